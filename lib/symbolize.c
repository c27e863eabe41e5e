// SPDX-License-Identifier: MIT
/*
 * Naming a code address, for reports such as the finalizer watchdog's
 * "BUG: finalizer lockup", without libelf, libbacktrace or libdw.
 *
 * Why not dladdr() alone.  dladdr() answers from the dynamic symbol table
 * (.dynsym) of the object that holds the address, which lists exported
 * symbols only.  The functions a lockup report most wants to name are
 * often static functions of the main program, and an executable linked
 * without -rdynamic exports nothing at all: those names exist only in the
 * full symbol table, .symtab, which is never loaded into memory.
 *
 * So dladdr1() is asked only which object holds the address: its link_map
 * gives the object's file and its load bias, l_addr, the difference
 * between addresses in memory and in the file (0 for an ET_EXEC
 * executable, the load address for a PIE or a shared library).  The file
 * is then mapped read-only and its .symtab, or for a stripped file its
 * .dynsym, is searched for the STT_FUNC symbol whose
 * [st_value, st_value + st_size) holds the address minus the bias.  The
 * main program has an empty link_map name (dladdr() reports argv[0],
 * which may be relative or false) and is opened as /proc/self/exe.
 *
 * Trust nothing in the file: every offset, size, count, index and string
 * offset is checked against the size of the mapping before it is used, so
 * a truncated or malformed file gives "not found", never a fault.  Only
 * 64-bit little-endian ELF is read.  What is read is the file on disk
 * now: a library replaced after it was loaded is read as it is now, and
 * one truncated in place while mapped could raise SIGBUS.  Packages are
 * replaced by rename(), so both are accepted.
 *
 * No cache and no static state: each call maps, searches and unmaps, so
 * any thread may call it at any time; it is for rare diagnostics.  It
 * uses libc only, never kslab's allocator, so it still works when the
 * allocator is what is being reported on.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/compiler.h"
#include "lib/symbolize.h"

/* An object file mapped read-only; every pointer into it is from elf_at(). */
struct elf_file {
	const unsigned char *data;
	size_t size;
};

/*
 * elf_at() - @len bytes at file offset @off, if they lie inside the file
 * and @off is aligned to @align; NULL otherwise.
 */
static const void *elf_at(const struct elf_file *f, uint64_t off,
			  uint64_t len, size_t align)
{
	if (off > f->size || len > f->size - off || off % align)
		return NULL;
	return f->data + off;
}

static bool elf_header_ok(const struct elf_file *f)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f->data;

	if (f->size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return false;
	return eh->e_ident[EI_CLASS] == ELFCLASS64 &&
	       eh->e_ident[EI_DATA] == ELFDATA2LSB &&
	       (eh->e_type == ET_EXEC || eh->e_type == ET_DYN);
}

/* The section header table, its length in *@nr; NULL if it is unusable. */
static const Elf64_Shdr *elf_sections(const struct elf_file *f, size_t *nr)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f->data;
	const Elf64_Shdr *sh;
	uint64_t n = eh->e_shnum;

	if (eh->e_shentsize != sizeof(*sh) || !eh->e_shoff)
		return NULL;
	sh = elf_at(f, eh->e_shoff, sizeof(*sh), _Alignof(Elf64_Shdr));
	if (!sh)
		return NULL;
	/* from SHN_LORESERVE sections on, section 0 holds the count */
	if (!n)
		n = sh[0].sh_size;
	if (n > f->size / sizeof(*sh) ||
	    !elf_at(f, eh->e_shoff, n * sizeof(*sh), _Alignof(Elf64_Shdr)))
		return NULL;
	*nr = n;
	return sh;
}

/* @sym is a defined function whose extent holds @vaddr. */
static bool sym_holds(const Elf64_Sym *sym, uint64_t vaddr)
{
	return ELF64_ST_TYPE(sym->st_info) == STT_FUNC &&
	       sym->st_shndx != SHN_UNDEF &&
	       vaddr >= sym->st_value &&
	       vaddr - sym->st_value < sym->st_size;
}

/* The name at @off in a string table of @size bytes, if NUL-terminated. */
static const char *str_at(const char *strs, uint64_t size, uint64_t off)
{
	if (off >= size || !strs[off] || !memchr(strs + off, '\0', size - off))
		return NULL;
	return strs + off;
}

/*
 * search_symtab() - the function in symbol table @tab holding @vaddr.
 *
 * Return: its symbol, with its name in *@name, or NULL.
 */
static const Elf64_Sym *search_symtab(const struct elf_file *f,
				      const Elf64_Shdr *sh, size_t nr_sh,
				      const Elf64_Shdr *tab, uint64_t vaddr,
				      const char **name)
{
	const Elf64_Shdr *strtab;
	const Elf64_Sym *syms;
	const char *strs;
	size_t i;

	if (tab->sh_entsize != sizeof(*syms) || tab->sh_link >= nr_sh)
		return NULL;
	strtab = &sh[tab->sh_link];
	if (strtab->sh_type != SHT_STRTAB)
		return NULL;
	syms = elf_at(f, tab->sh_offset, tab->sh_size, _Alignof(Elf64_Sym));
	strs = elf_at(f, strtab->sh_offset, strtab->sh_size, 1);
	if (!syms || !strs)
		return NULL;

	/* symbol 0 is the reserved undefined one */
	for (i = 1; i < tab->sh_size / sizeof(*syms); i++) {
		if (!sym_holds(&syms[i], vaddr))
			continue;
		*name = str_at(strs, strtab->sh_size, syms[i].st_name);
		if (*name)
			return &syms[i];
	}
	return NULL;
}

/*
 * elf_find_func() - the function holding file address @vaddr: from
 * .symtab, which lists static functions too, else from .dynsym.
 *
 * Return: its symbol, with its name in *@name, or NULL.
 */
static const Elf64_Sym *elf_find_func(const struct elf_file *f, uint64_t vaddr,
				      const char **name)
{
	static const Elf64_Word table_types[] = { SHT_SYMTAB, SHT_DYNSYM };
	const Elf64_Shdr *sh;
	const Elf64_Sym *sym;
	size_t nr_sh, t, i;

	if (!elf_header_ok(f))
		return NULL;
	sh = elf_sections(f, &nr_sh);
	if (!sh)
		return NULL;
	for (t = 0; t < ARRAY_SIZE(table_types); t++) {
		for (i = 0; i < nr_sh; i++) {
			if (sh[i].sh_type != table_types[t])
				continue;
			sym = search_symtab(f, sh, nr_sh, &sh[i], vaddr, name);
			if (sym)
				return sym;
		}
	}
	return NULL;
}

static void format_name(char *buf, size_t len, const char *name,
			uintptr_t offset)
{
	if (offset)
		snprintf(buf, len, "%s+0x%lx", name, (unsigned long)offset);
	else
		snprintf(buf, len, "%s", name);
}

/* map_file() - map the regular file at @path read-only into @f. */
static bool map_file(const char *path, struct elf_file *f)
{
	struct stat st;
	void *data;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size < (off_t)sizeof(Elf64_Ehdr))
		goto err_close;
	data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (data == MAP_FAILED)
		goto err_close;
	close(fd);
	f->data = data;
	f->size = (size_t)st.st_size;
	return true;

err_close:
	close(fd);
	return false;
}

/*
 * symbolize_from_file() - name @vaddr, a file address, from the symbol
 * tables of the file at @path into @buf.
 *
 * Return: true if a function held it.
 */
static bool symbolize_from_file(const char *path, uint64_t vaddr,
				char *buf, size_t len)
{
	struct elf_file f;
	const Elf64_Sym *sym;
	const char *name;

	if (!map_file(path, &f))
		return false;
	sym = elf_find_func(&f, vaddr, &name);
	if (sym)
		format_name(buf, len, name, vaddr - sym->st_value);
	munmap((void *)f.data, f.size);
	return sym != NULL;
}

/**
 * kslab_symbolize() - name the function that holds a code address
 * @addr: a code address: a function pointer, a return address
 * @buf: where the NUL-terminated text goes
 * @len: size of @buf; a longer text is cut short, still NUL-terminated
 *
 * Writes "name" when @addr is where a function starts, "name+0x1c" when it
 * lies inside one, and the "%p" text of @addr when no function is found.
 * Static functions are found in every object that keeps its .symtab (the
 * main program, unless stripped), exported ones in every object.
 *
 * Context: any thread.  Never calls kslab's allocator.  Not from a signal
 * handler: it takes the dynamic loader's lock (dladdr1()), and opens and
 * maps a file.
 * Return: 0 when a name was written, -ENOENT when the "%p" text was,
 * -EINVAL when @len is 0 (nothing is written).
 */
int kslab_symbolize(const void *addr, char *buf, size_t len)
{
	struct link_map *map = NULL;
	const char *path;
	uintptr_t start;
	Dl_info info;

	if (!len)
		return -EINVAL;
	if (!dladdr1(addr, &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
		goto not_found;

	if (info.dli_sname && info.dli_saddr == addr) {
		format_name(buf, len, info.dli_sname, 0);
		return 0;
	}
	path = map->l_name && map->l_name[0] ? map->l_name : "/proc/self/exe";
	if ((uintptr_t)addr >= map->l_addr &&
	    symbolize_from_file(path, (uintptr_t)addr - map->l_addr, buf, len))
		return 0;
	/* an object with no file to read, such as the vDSO */
	start = (uintptr_t)info.dli_saddr;
	if (info.dli_sname && start && (uintptr_t)addr >= start) {
		format_name(buf, len, info.dli_sname, (uintptr_t)addr - start);
		return 0;
	}

not_found:
	snprintf(buf, len, "%p", addr);
	return -ENOENT;
}
