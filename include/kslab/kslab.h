/* SPDX-License-Identifier: MIT */
/*
 * kslab: one header for the whole public API.
 */
#ifndef _KSLAB_KSLAB_H
#define _KSLAB_KSLAB_H

#include <kslab/slab.h>
#include <kslab/finalizer.h>
#include <kslab/workqueue.h>

#endif /* _KSLAB_KSLAB_H */
