/* rig-segv: a userspace program that dies the named way (the corpus' "segfault at" and near misses). */
#include <string.h>

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "segv";

	if (!strcmp(what, "divide")) /* not 1 / z: gcc turns that into a comparison */
		__asm__ volatile("xorl %%edx, %%edx; movl $1, %%eax; xorl %%ecx, %%ecx; divl %%ecx" ::: "eax", "ecx", "edx");
	if (!strcmp(what, "int3"))
		__asm__ volatile("int3");
	if (!strcmp(what, "ud2"))
		__asm__ volatile("ud2");
	*(volatile int *)0 = 1;
	return 0;
}
