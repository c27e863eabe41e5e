// SPDX-License-Identifier: MIT
/*
 * make run: a short tour of kslab's caches and kmalloc.
 *
 * Creates a cache for a small struct with a constructor, shows that the
 * constructor runs once per object (not on reuse), frees objects from
 * another thread, uses the kmalloc family, and prints the cache's
 * counters before giving everything back with kmem_cache_shrink().
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <kslab/kslab.h>

struct session {
	unsigned long id;
	char user[32];
	unsigned int constructed;	/* set by the ctor only */
};

static unsigned long ctor_calls;

static void session_ctor(void *obj)
{
	struct session *s = obj;

	s->constructed = 0xC0FFEE;
	__atomic_fetch_add(&ctor_calls, 1, __ATOMIC_RELAXED);
}

#define NR_SESSIONS 10000

static struct kmem_cache *session_cache;
static struct session *sessions[NR_SESSIONS];

static void *free_from_other_thread(void *arg)
{
	unsigned int i;

	(void)arg;
	for (i = 0; i < NR_SESSIONS; i++)
		kmem_cache_free(session_cache, sessions[i]);
	return NULL;
}

static void show(const char *when)
{
	struct kmem_cache_info info;

	kmem_cache_get_info(session_cache, &info);
	printf("  %-28s active %6zu  slabs %3zu  total %6zu  ctor calls %lu\n",
	       when, info.active_objs, info.slabs, info.total_objs, ctor_calls);
}

int main(void)
{
	struct kmem_cache *plain;
	struct session *s;
	pthread_t thread;
	unsigned int i;
	int *numbers, *bigger;
	char *greeting;

	printf("kslab demo: caches\n");
	session_cache = kmem_cache_create("session", sizeof(struct session), 0,
					  SLAB_HWCACHE_ALIGN, session_ctor);
	if (!session_cache) {
		perror("kmem_cache_create");
		return 1;
	}
	printf("  cache %s: object size %u\n", kmem_cache_name(session_cache),
	       kmem_cache_size(session_cache));

	for (i = 0; i < NR_SESSIONS; i++) {
		sessions[i] = kmem_cache_alloc(session_cache, GFP_KERNEL);
		if (!sessions[i])
			return 1;
		sessions[i]->id = i;
	}
	show("after 10000 allocations");

	pthread_create(&thread, NULL, free_from_other_thread, NULL);
	pthread_join(thread, NULL);
	show("freed by another thread");

	s = kmem_cache_alloc(session_cache, GFP_KERNEL);
	printf("  reused object still constructed: %s\n",
	       s->constructed == 0xC0FFEE ? "yes" : "no");
	kmem_cache_free(session_cache, s);

	printf("  kmem_cache_shrink: %d\n", kmem_cache_shrink(session_cache));
	show("after shrink");
	kmem_cache_destroy(session_cache);

	plain = KMEM_CACHE(session, 0);
	s = kmem_cache_zalloc(plain, GFP_KERNEL);
	printf("  KMEM_CACHE(session): zalloc'd object zeroed: %s\n",
	       s && !s->constructed && !s->id ? "yes" : "no");
	kmem_cache_free(plain, s);
	kmem_cache_destroy(plain);

	printf("kslab demo: kmalloc\n");
	greeting = kstrdup("hello from kmalloc", GFP_KERNEL);
	numbers = kcalloc(1000, sizeof(*numbers), GFP_KERNEL);
	printf("  kstrdup: \"%s\" (ksize %zu)\n", greeting, ksize(greeting));
	printf("  kcalloc(1000, %zu): ksize %zu, zeroed: %s\n", sizeof(*numbers),
	       ksize(numbers), numbers[999] == 0 ? "yes" : "no");
	bigger = krealloc(numbers, 1 << 20, GFP_KERNEL);
	if (!bigger)
		return 1;
	numbers = bigger;
	printf("  krealloc to 1 MiB (mapped directly): ksize %zu, kept: %s\n",
	       ksize(numbers), numbers[999] == 0 ? "yes" : "no");
	printf("  kcalloc overflow gives NULL: %s\n",
	       kcalloc(~(size_t)0, 2, GFP_KERNEL) ? "no" : "yes");
	kfree(numbers);
	kfree(greeting);
	return 0;
}
