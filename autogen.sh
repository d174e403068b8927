#!/bin/sh
# Generates configure and Makefile.in; then: ./configure [--enable-werror] [--enable-sanitizers]
set -e
cd "$(dirname "$0")"
exec autoreconf -fi
