/* SPDX-License-Identifier: MIT */
/*
 * Code addresses to "function+0xoff (file:line)", and the call trace of
 * kslab's reports.  Every report that names code goes through here: see
 * lib/symbolize.c for how, and what it costs.
 */
#ifndef _KSLAB_LIB_SYMBOLIZE_H
#define _KSLAB_LIB_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

#define KSLAB_SYM_NAME_LEN	128
#define KSLAB_SYM_FILE_LEN	256
#define KSLAB_SYM_MODULE_LEN	64

/* kslab_symbol_lookup() flags */
/* a return address: describe the call instruction just before it */
#define KSLAB_SYM_RETURN	0x1u
/* the source file and line too: reads DWARF, slower on an object's first use */
#define KSLAB_SYM_SOURCE	0x2u

/**
 * struct kslab_symbol - what is known about one code address
 * @addr: the address described
 * @offset: @addr minus the start of function @name
 * @size: the size of @name in bytes, 0 if the symbol table does not say
 * @line: the source line of @addr, 0 without line information
 * @module_offset: @addr as a file address of @module, the address
 *	addr2line(1) and objdump(1) take; valid when @module is set
 * @name: the function holding @addr, "" if none is known
 * @file: the source file of @addr, relative to the directory it was
 *	compiled in; "" without debug information
 * @module: the basename of the object holding @addr, "" if none
 *
 * The strings are copies, NUL-terminated, cut short if need be.
 */
struct kslab_symbol {
	const void *addr;
	uintptr_t offset;
	size_t size;
	unsigned int line;
	uintptr_t module_offset;
	char name[KSLAB_SYM_NAME_LEN];
	char file[KSLAB_SYM_FILE_LEN];
	char module[KSLAB_SYM_MODULE_LEN];
};

int kslab_symbol_lookup(const void *addr, unsigned int flags,
			struct kslab_symbol *sym);
int kslab_symbolize(const void *addr, char *buf, size_t len);
void kslab_dump_stack(unsigned int skip);

#pragma GCC visibility pop

#endif /* _KSLAB_LIB_SYMBOLIZE_H */
