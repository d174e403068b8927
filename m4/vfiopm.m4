# VFIOPM_CC_FLAGS(VARIABLE, FLAGS)
# Appends to VARIABLE each of FLAGS that $CC accepts. Each flag is probed with -Werror, so an
# unknown one is dropped instead of breaking the build.
AC_DEFUN([VFIOPM_CC_FLAGS], [
    for vfiopm_flag in $2; do
        AC_MSG_CHECKING([whether $CC accepts $vfiopm_flag])
        vfiopm_saved_CFLAGS=$CFLAGS
        CFLAGS="$CFLAGS -Werror $vfiopm_flag"
        AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
            [AC_MSG_RESULT([yes]); $1="$$1 $vfiopm_flag"],
            [AC_MSG_RESULT([no])])
        CFLAGS=$vfiopm_saved_CFLAGS
    done
])
