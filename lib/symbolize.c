// SPDX-License-Identifier: MIT
/*
 * Naming code addresses for reports: the finalizer in the watchdog's
 * "BUG: finalizer lockup" and in the pthread_exit() reports of finalizers
 * and work functions, and the call trace under every slab report, one
 * line per frame:
 *
 *	 [<00005581e6a33ef9>] release+0x9/0xe (bad_free.c:5)
 *
 * Where the names come from.  elfutils' libdw (libdwfl) reads each object
 * loaded into this process: its full symbol table .symtab, which names
 * static functions too and is never loaded into memory, else .dynsym;
 * and the DWARF line table, in the object itself (kslab and its tests
 * build with -g) or in a separate debug file found by build id under
 * /usr/lib/debug (Debian's -dbg and -dbgsym packages).  Only local files
 * are read: the debuginfod client, which libdw's standard search starts
 * when DEBUGINFOD_URLS is set, is never asked, so a report never waits
 * for the network.  What is read is the file on disk now: a library
 * replaced since it was loaded is described as it is now.  When libdw
 * has no name (an object without a file, such as the vDSO, or one libdw
 * cannot read), dladdr() names exported functions; when no function holds
 * the address, it is printed as "%p".
 *
 * The session.  The Dwfl handle, @session, is kept from one report to
 * the next, and libdw caches in it each object's tables the first time
 * they are needed.  Objects join it lazily: a lookup asks the dynamic
 * loader which object holds the address (dladdr1(), whose lock glibc
 * resets in a fork child), and the first time it is one the session does
 * not have, reports its file and load bias (dwfl_report_elf()).  So a
 * library dlopen()ed later is found like any other, and an address in no
 * object (the stack, the heap, NULL) costs one dladdr1().  When the module
 * found is not the object the loader names (one unloaded, another loaded
 * in its place) the session starts afresh, libdw having no way to drop a
 * module.  Neither /proc/self/maps (dwfl_linux_proc_report()) nor
 * dl_iterate_phdr() is read: libdw maps the files it reads, and the maps
 * would list those as objects; and glibc does not reset the lock of
 * dl_iterate_phdr() in a fork child, which would hang if another thread
 * of the parent held it at the fork.
 *
 * Locking.  A Dwfl is not thread-safe: symbolize_lock serialises every
 * use of @session.  It nests inside every kslab lock, since reports are
 * printed with kslab locks held (a double free found under a cache lock,
 * the finalizer watchdog under fin_lock), and nothing here takes a kslab
 * lock, calls kslab's allocator or waits for another thread.  The
 * loader's lock is taken before it, never under it.  libdw calls
 * malloc(), open() and mmap() under it, on an object's first use for up
 * to tens of milliseconds (a large debug file): acceptable for a report,
 * a cold path, but it is why kslab_symbol_lookup() must not be called
 * from a signal handler or from inside malloc().  kslab's own metadata
 * never comes from malloc(); the symbolizer's does, and only the
 * symbolizer's.  The files handed to libdw are opened close-on-exec.
 *
 * fork().  The child's copy of @session describes the child as well (same
 * objects at the same addresses, the files still open and mapped), unless
 * another thread of the parent was inside libdw at the fork: then its
 * lists may be half updated and symbolize_lock is held by a thread that
 * does not exist in the child.  So the child handler re-initialises the
 * lock, and a session that was in use is abandoned unread (kept
 * reachable, so that leak checkers do not count it); the child's next
 * lookup builds a new one.
 */
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/compiler.h"
#include "lib/symbolize.h"

/* frames kslab_dump_stack() prints at most */
#define STACK_DEPTH	32

/* dladdr1() hands out ElfW(Sym); 32-bit ELF is not read */
_Static_assert(sizeof(ElfW(Sym)) == sizeof(Elf64_Sym), "64-bit ELF only");

/* The main program's module: the loader's list gives it no file name. */
#define MAIN_PROGRAM	"/proc/self/exe"

/* The object holding an address, as the dynamic loader describes it. */
struct loaded_object {
	uintptr_t bias;			/* load bias, link_map's l_addr */
	char path[PATH_MAX];		/* absolute, or MAIN_PROGRAM */
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t symbolize_lock = PTHREAD_MUTEX_INITIALIZER;
/* all three under symbolize_lock */
static Dwfl *session;		/* NULL until the first lookup */
static bool session_in_use;	/* a lookup is inside libdw */
static Dwfl *abandoned_session;	/* a fork child's half-updated copy */

/* ------------------------------------------------------------- session */

/* Every module is reported with its ELF file: nothing is left to find. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *name,
		    Dwarf_Addr base, char **file_name, Elf **elf)
{
	(void)mod;
	(void)userdata;
	(void)name;
	(void)base;
	(void)file_name;
	(void)elf;
	return -1;
}

/*
 * Separate debug information by build id, on local disk only.  libdw
 * keeps the file open; a program that forks and execs must not hand it
 * to the new program.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata,
			  const char *name, Dwarf_Addr base,
			  const char *file_name, const char *debuglink,
			  GElf_Word crc, char **debuginfo_file_name)
{
	int fd = dwfl_build_id_find_debuginfo(mod, userdata, name, base,
					      file_name, debuglink, crc,
					      debuginfo_file_name);

	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* NULL: libdw's default search path, ":.debug:/usr/lib/debug" */
static char *debuginfo_path;

static const Dwfl_Callbacks session_callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static void symbolize_atfork_child(void)
{
	pthread_mutex_init(&symbolize_lock, NULL);
	if (session_in_use) {
		abandoned_session = session;
		session = NULL;
		session_in_use = false;
	}
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, symbolize_atfork_child);
}

/*
 * find_object() - the object holding @pc, from the dynamic loader.
 *
 * Its link_map is read at once: the caller keeps the object loaded (it is
 * reporting on code in it), but the loader's lock is not held after
 * dladdr1() returns.  An object whose name is no absolute path (the vDSO,
 * one opened by a relative path) is left to dladdr().
 *
 * Return: true if @obj describes an object libdw can read.
 */
static bool find_object(uintptr_t pc, struct loaded_object *obj)
{
	struct link_map *map = NULL;
	Dl_info info;

	if (!dladdr1((const void *)pc, &info, (void **)&map, RTLD_DL_LINKMAP) ||
	    !map)
		return false;
	obj->bias = map->l_addr;
	if (!map->l_name || !map->l_name[0])
		snprintf(obj->path, sizeof(obj->path), "%s", MAIN_PROGRAM);
	else if (map->l_name[0] == '/')
		snprintf(obj->path, sizeof(obj->path), "%s", map->l_name);
	else
		return false;
	return true;
}

/* The session's module holding @pc, if any. */
static Dwfl_Module *find_module(uintptr_t pc)
{
	Dwfl_Module *mod = dwfl_addrmodule(session, pc);
	Dwarf_Addr start, end;

	if (!mod)
		return NULL;
	/* libdw may answer with the highest module for an address above it */
	dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, NULL, NULL);
	return pc >= start && pc < end ? mod : NULL;
}

/* @mod was reported for @obj, not for an object unloaded since. */
static bool module_is(Dwfl_Module *mod, const struct loaded_object *obj)
{
	const char *name;
	GElf_Addr bias;

	name = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	return name && !strcmp(name, obj->path) &&
	       dwfl_module_getelf(mod, &bias) && bias == obj->bias;
}

/*
 * Add @obj to the session, by its file and load bias.  The main program
 * is read through /proc/self/exe, so that a binary moved or deleted since
 * exec still is, and shown under its own path.
 */
static void report_object(const struct loaded_object *obj)
{
	const char *file = obj->path;
	char exe[PATH_MAX];
	int fd;

	fd = open(obj->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (!strcmp(obj->path, MAIN_PROGRAM)) {
		ssize_t n = readlink(MAIN_PROGRAM, exe, sizeof(exe) - 1);

		if (n > 0) {
			exe[n] = '\0';
			file = exe;
		}
	}
	dwfl_report_begin_add(session);
	/* on success libdw owns @fd */
	if (!dwfl_report_elf(session, obj->path, file, fd, obj->bias, false))
		close(fd);
	dwfl_report_end(session, NULL, NULL);
}

/*
 * session_module() - the session's module for @obj, which holds @pc,
 * reported now if it is new.  If a module of an object unloaded since
 * stands where @obj is, the session starts afresh: libdw cannot take a
 * module back.
 *
 * Context: symbolize_lock held.
 * Return: the module, or NULL if libdw cannot read @obj.
 */
static Dwfl_Module *session_module(const struct loaded_object *obj,
				   uintptr_t pc)
{
	Dwfl_Module *mod;

	mod = session ? find_module(pc) : NULL;
	if (mod && module_is(mod, obj))
		return mod;
	if (mod) {
		dwfl_end(session);
		session = NULL;
	}
	if (!session)
		session = dwfl_begin(&session_callbacks);
	if (!session)
		return NULL;
	report_object(obj);
	mod = find_module(pc);
	return mod && module_is(mod, obj) ? mod : NULL;
}

/* ------------------------------------------------------------- lookups */

static void copy_string(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

/* A symbol's name without its version ("__libc_start_main@@GLIBC_2.34"). */
static void copy_name(char *dst, size_t len, const char *name)
{
	snprintf(dst, len, "%.*s", (int)strcspn(name, "@"), name);
}

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* A symbol whose @st_info makes it code. */
static bool is_function(unsigned char st_info)
{
	unsigned char type = GELF_ST_TYPE(st_info);

	return type == STT_FUNC || type == STT_GNU_IFUNC;
}

/* A source path as the compiler saw it: relative to its directory. */
static const char *relative_source(Dwarf_Die *cudie, const char *file)
{
	Dwarf_Attribute attr;
	const char *dir;

	dir = dwarf_formstring(dwarf_attr(cudie, DW_AT_comp_dir, &attr));
	if (dir) {
		size_t n = strlen(dir);

		if (n && !strncmp(file, dir, n) && file[n] == '/')
			file += n + 1;
	}
	while (!strncmp(file, "./", 2))
		file += 2;
	return file;
}

/*
 * source_line() - the line table row of @pc, and its compilation unit in
 * *@cudie.  libdw finds the unit through .debug_aranges, which clang
 * leaves out unless told otherwise (-gdwarf-aranges); without it the
 * units are searched one by one.
 */
static Dwarf_Line *source_line(Dwfl_Module *mod, uintptr_t pc,
			       Dwarf_Die *cudie)
{
	Dwarf_CU *cu = NULL;
	Dwarf_Addr bias;
	Dwarf_Die *die;
	Dwarf *dw;

	die = dwfl_module_addrdie(mod, pc, &bias);
	if (die) {
		*cudie = *die;
		return dwarf_getsrc_die(cudie, pc - bias);
	}
	dw = dwfl_module_getdwarf(mod, &bias);
	while (dw && !dwarf_get_units(dw, cu, &cu, NULL, NULL, cudie, NULL)) {
		if (dwarf_haspc(cudie, pc - bias) == 1)
			return dwarf_getsrc_die(cudie, pc - bias);
	}
	return NULL;
}

/* The object, function and (KSLAB_SYM_SOURCE) line of @pc, from libdw. */
static void dwfl_describe(Dwfl_Module *mod, uintptr_t pc, unsigned int flags,
			  struct kslab_symbol *sym)
{
	const char *name, *file = NULL;
	Dwarf_Die cudie;
	Dwarf_Line *line;
	GElf_Addr bias;
	GElf_Off off;
	GElf_Sym es;
	int lineno;

	dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &file, NULL);
	if (file && dwfl_module_getelf(mod, &bias)) {
		copy_string(sym->module, sizeof(sym->module), basename_of(file));
		sym->module_offset = pc - bias;
	}

	name = dwfl_module_addrinfo(mod, pc, &off, &es, NULL, NULL, NULL);
	if (name && *name && is_function(es.st_info) &&
	    (!es.st_size || off < es.st_size)) {
		copy_name(sym->name, sizeof(sym->name), name);
		sym->offset = off;
		sym->size = es.st_size;
	}

	if (!(flags & KSLAB_SYM_SOURCE))
		return;
	line = source_line(mod, pc, &cudie);
	file = line ? dwarf_linesrc(line, NULL, NULL) : NULL;
	if (file && !dwarf_lineno(line, &lineno) && lineno > 0) {
		copy_string(sym->file, sizeof(sym->file),
			    relative_source(&cudie, file));
		sym->line = lineno;
	}
}

/* The exported function holding @pc, from dladdr1()'s answer. */
static void dladdr_describe(uintptr_t pc, const Dl_info *info,
			    const Elf64_Sym *es, struct kslab_symbol *sym)
{
	uintptr_t start = (uintptr_t)info->dli_saddr;

	if (!sym->module[0] && info->dli_fname && info->dli_fbase) {
		copy_string(sym->module, sizeof(sym->module),
			    basename_of(info->dli_fname));
		sym->module_offset = pc - (uintptr_t)info->dli_fbase;
	}
	if (!info->dli_sname || !start || pc < start || !es ||
	    !is_function(es->st_info))
		return;
	if (es->st_size && pc - start >= es->st_size)
		return;
	copy_name(sym->name, sizeof(sym->name), info->dli_sname);
	sym->offset = pc - start;
	sym->size = es->st_size;
}

/**
 * kslab_symbol_lookup() - describe a code address
 * @addr: a code address: a function pointer, a return address
 * @flags: KSLAB_SYM_RETURN when @addr is a return address, as in a call
 *	trace: the function and line are then those of the call before it
 *	(a call can be the last instruction of a function), and
 *	@sym->offset is still that of @addr; KSLAB_SYM_SOURCE to look up
 *	@sym->file and @sym->line as well
 * @sym: filled in; fields not known are 0 or ""
 *
 * Context: any thread, any kslab lock held (see the top of this file);
 * not from a signal handler or from inside malloc(): libdw allocates and
 * reads files.  Never calls kslab's allocator.
 * Return: 0 if a function holds @addr (@sym->name is set), -ENOENT if not.
 */
int kslab_symbol_lookup(const void *addr, unsigned int flags,
			struct kslab_symbol *sym)
{
	uintptr_t pc = (uintptr_t)addr;
	const Elf64_Sym *es = NULL;
	struct loaded_object obj;
	Dl_info info;

	memset(sym, 0, sizeof(*sym));
	sym->addr = addr;
	if ((flags & KSLAB_SYM_RETURN) && pc)
		pc--;
	pthread_once(&atfork_once, register_atfork);

	/* the loader's lock before symbolize_lock, never under it */
	if (find_object(pc, &obj)) {
		Dwfl_Module *mod;

		pthread_mutex_lock(&symbolize_lock);
		session_in_use = true;
		mod = session_module(&obj, pc);
		if (mod)
			dwfl_describe(mod, pc, flags, sym);
		session_in_use = false;
		pthread_mutex_unlock(&symbolize_lock);
	}

	if (!sym->name[0] &&
	    dladdr1((const void *)pc, &info, (void **)&es, RTLD_DL_SYMENT))
		dladdr_describe(pc, &info, es, sym);
	if (pc != (uintptr_t)addr) {
		if (sym->module[0])
			sym->module_offset++;
		if (sym->name[0])
			sym->offset++;
	}
	return sym->name[0] ? 0 : -ENOENT;
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
 * Context: as kslab_symbol_lookup().
 * Return: 0 when a name was written, -ENOENT when the "%p" text was,
 * -EINVAL when @len is 0 (nothing is written).
 */
int kslab_symbolize(const void *addr, char *buf, size_t len)
{
	struct kslab_symbol sym;
	int err;

	if (!len)
		return -EINVAL;
	err = kslab_symbol_lookup(addr, 0, &sym);
	if (err)
		snprintf(buf, len, "%p", addr);
	else if (sym.offset)
		snprintf(buf, len, "%s+0x%lx", sym.name,
			 (unsigned long)sym.offset);
	else
		snprintf(buf, len, "%s", sym.name);
	return err;
}

/* ---------------------------------------------------------- call trace */

/*
 * One frame, kernel style:
 *	 [<addr>] name+0xoff/0xsize (file:line)
 * "/0xsize" only when the symbol table gives it, "(file:line)" only with
 * line information; an address in no known function shows its object and
 * file address instead ("libfoo.so+0x1234"), or nothing.
 */
static void print_frame(FILE *f, const void *addr)
{
	struct kslab_symbol sym;

	kslab_symbol_lookup(addr, KSLAB_SYM_RETURN | KSLAB_SYM_SOURCE, &sym);
	fprintf(f, " [<%0*lx>]", (int)(2 * sizeof(addr)),
		(unsigned long)(uintptr_t)addr);
	if (sym.name[0]) {
		fprintf(f, " %s+0x%lx", sym.name, (unsigned long)sym.offset);
		if (sym.size)
			fprintf(f, "/0x%lx", (unsigned long)sym.size);
	} else if (sym.module[0]) {
		fprintf(f, " %s+0x%lx", sym.module,
			(unsigned long)sym.module_offset);
	}
	if (sym.line)
		fprintf(f, " (%s:%u)", sym.file, sym.line);
	fputc('\n', f);
}

/**
 * kslab_dump_stack() - print the call trace of the calling thread
 * @skip: callers to leave out, beyond kslab_dump_stack() itself: 0 starts
 *	the trace at the function that called kslab_dump_stack()
 *
 * Prints "Call trace:" and then one line per frame, innermost first, on
 * stderr, which stays locked for the whole trace so that two threads'
 * traces do not interleave; the 32 innermost frames at most, @skip ones
 * included.  A function the compiler inlined, or
 * left with a tail call, has no frame of its own and does not appear.
 *
 * Context: as kslab_symbol_lookup(); the first trace of a process also
 * makes the C library load its unwinder (libgcc_s), with malloc().
 */
noinline __cold void kslab_dump_stack(unsigned int skip)
{
	void *caller = __builtin_return_address(0);
	void *frames[2 + STACK_DEPTH];
	int n, i, first;

	n = backtrace(frames, ARRAY_SIZE(frames));
	/*
	 * The trace starts at our caller: frames[1], after this function's
	 * own, unless a sanitizer's backtrace() added a frame of its own.
	 */
	for (first = 1; first < n && frames[first] != caller; first++)
		;
	if (first == n)
		first = 1;
	flockfile(stderr);
	fputs("Call trace:\n", stderr);
	for (i = first; i < n && i - first < STACK_DEPTH; i++) {
		if ((unsigned int)(i - first) >= skip)
			print_frame(stderr, frames[i]);
	}
	funlockfile(stderr);
}
