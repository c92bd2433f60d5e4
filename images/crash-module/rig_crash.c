// SPDX-License-Identifier: GPL-2.0
/*
 * rig_crash: makes the kernel fail in one named way, so the rig's crash patterns are checked
 * against what a real kernel prints (tests/fixtures/crashes/, recorded by
 * scripts/record-crashes.ts on the first guest's Debian kernel). Write a case name to
 * /proc/rig_crash: divide, int3, ud2, stack-segment, stack-overflow, soft-lockup, rcu-stall,
 * hung-task. Only for throwaway guests: every case but the last three kills the kernel.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/delay.h>
#include <linux/sched.h>
#include <linux/rcupdate.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dmemfs-rig: named kernel failures for the crash-pattern corpus");

static unsigned int spin_s = 8;
module_param(spin_s, uint, 0644);
MODULE_PARM_DESC(spin_s, "seconds soft-lockup and rcu-stall spin with preemption off");

static noinline void crash_divide(void)
{
	asm volatile("xorl %%edx, %%edx; movl $1, %%eax; xorl %%ecx, %%ecx; divl %%ecx"
		     ::: "eax", "ecx", "edx");
}

static noinline void crash_int3(void)
{
	asm volatile("int3");
}

static noinline void crash_ud2(void)
{
	asm volatile("ud2");
}

/* A load through RBP at a non-canonical address raises #SS, not #GP. */
static noinline void crash_stack_segment(void)
{
	asm volatile("pushq %%rbp; movabsq $0x8000000000000000, %%rbp; movq (%%rbp), %%rax; popq %%rbp"
		     ::: "rax", "memory");
}

static noinline int recurse(int depth)
{
	volatile char pad[256];

	pad[0] = (char)depth;
	return recurse(depth + 1) + pad[0];
}

static void spin(void)
{
	unsigned int i;

	preempt_disable();
	for (i = 0; i < spin_s * 1000; i++)
		mdelay(1);
	preempt_enable();
}

static void crash_rcu_stall(void)
{
	rcu_read_lock();
	spin();
	rcu_read_unlock();
}

static void crash_hung_task(void)
{
	set_current_state(TASK_UNINTERRUPTIBLE);
	schedule_timeout(spin_s * HZ);
}

static ssize_t rig_crash_write(struct file *f, const char __user *buf, size_t n, loff_t *pos)
{
	char what[32] = {};

	if (copy_from_user(what, buf, min(n, sizeof(what) - 1)))
		return -EFAULT;
	strim(what);
	pr_info("rig_crash: %s\n", what);
	if (!strcmp(what, "divide"))
		crash_divide();
	else if (!strcmp(what, "int3"))
		crash_int3();
	else if (!strcmp(what, "ud2"))
		crash_ud2();
	else if (!strcmp(what, "stack-segment"))
		crash_stack_segment();
	else if (!strcmp(what, "stack-overflow"))
		recurse(0);
	else if (!strcmp(what, "soft-lockup"))
		spin();
	else if (!strcmp(what, "rcu-stall"))
		crash_rcu_stall();
	else if (!strcmp(what, "hung-task"))
		crash_hung_task();
	else
		return -EINVAL;
	return n;
}

static const struct proc_ops rig_crash_ops = {
	.proc_write = rig_crash_write,
};

static int __init rig_crash_init(void)
{
	return proc_create("rig_crash", 0200, NULL, &rig_crash_ops) ? 0 : -ENOMEM;
}

static void __exit rig_crash_exit(void)
{
	remove_proc_entry("rig_crash", NULL);
}

module_init(rig_crash_init);
module_exit(rig_crash_exit);
