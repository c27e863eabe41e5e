/* SPDX-License-Identifier: MIT */
/*
 * Code address to "function+0xoff", for diagnostics such as the finalizer
 * watchdog's lockup report.  Finds static functions too: see
 * lib/symbolize.c.
 */
#ifndef _KSLAB_LIB_SYMBOLIZE_H
#define _KSLAB_LIB_SYMBOLIZE_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

int kslab_symbolize(const void *addr, char *buf, size_t len);

#pragma GCC visibility pop

#endif /* _KSLAB_LIB_SYMBOLIZE_H */
