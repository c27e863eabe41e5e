// SPDX-License-Identifier: MIT
/*
 * Go's runtime.SetFinalizer example, on kslab.
 *
 * The Go program, a classic of Go write-ups on finalizers:
 *
 *	func newTestStruct() *TestStruct {
 *		v := &TestStruct{"n1"}
 *		runtime.SetFinalizer(v, func(p *TestStruct) {
 *			fmt.Println("gc Finalizer")
 *		})
 *		return v
 *	}
 *
 *	func main() {
 *		t := newTestStruct()
 *		fmt.Println("=== start ===")
 *		_ = t
 *		fmt.Println("=== ... ===")
 *		runtime.GC()
 *		fmt.Println("=== end ===")
 *	}
 *
 * prints, and so does this program, byte for byte:
 *
 *	=== start ===
 *	=== ... ===
 *	gc Finalizer
 *	=== end ===
 *
 * kmem_set_finalizer() stands for runtime.SetFinalizer() and kmem_gc() for
 * runtime.GC().  The one real difference is how an object is dropped.  In
 * Go, t becomes unreachable after its last use and the collector notices
 * at runtime.GC().  C has no collector: dropping the last reference is
 * the free, and that is the moment kslab takes the object over.  It keeps
 * the memory, lets a grace period pass (an RCU reader may still hold the
 * pointer), then runs the finalizer on the thread "kslab-finalizer" with
 * the object intact, and only then reuses the memory.  So the program
 * frees t right before kmem_gc(), where Go's collector would find it.
 * Freed earlier, the finalizer could print as soon as the grace period
 * ends, possibly before "=== ... ===".
 *
 * kmem_gc() returns once every object freed before it has passed its
 * grace period and its finalizer is queued; it also gives those
 * finalizers a moment to run (as long as none takes more than about
 * 10 ms), which is why "gc Finalizer" comes before "=== end ===".
 */
#include <stdio.h>
#include <string.h>

#include <kslab/kslab.h>

struct test_struct {
	char name[16];
};

static void test_struct_finalizer(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	printf("gc Finalizer\n");
}

static struct test_struct *new_test_struct(void)
{
	struct test_struct *v = kmalloc(sizeof(*v), GFP_KERNEL);

	if (!v)
		return NULL;
	strcpy(v->name, "n1");
	if (kmem_set_finalizer(v, test_struct_finalizer, NULL)) {
		kfree(v);
		return NULL;
	}
	return v;
}

int main(void)
{
	struct test_struct *t = new_test_struct();

	if (!t) {
		perror("new_test_struct");
		return 1;
	}
	printf("=== start ===\n");
	printf("=== ... ===\n");
	kfree(t);		/* the last reference is gone */
	kmem_gc();
	printf("=== end ===\n");
	return 0;
}
