#pragma once

/* fault-io: faults in the daemon's own file I/O. The check binary is linked with
 * -Wl,--wrap=fsync (Makefile.am), so every fsync() the objects of libvfiopm.a call comes here
 * first: a fault set in a process (the harness's daemon side too, see bus-harness.h) fails what
 * it names; anything else goes to libc. */

/* From now on every fsync() of a directory fails with -error (a positive errno; 0: none fails).
 * A regular file's fsync still succeeds: what comes before the directory's (a rename) is done. */
void fault_io_set_dir_fsync_error(int error);

/* How many fsync() calls of a directory have failed this way in this process. */
unsigned fault_io_dir_fsync_failures(void);
