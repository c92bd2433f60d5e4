#!/bin/sh
# Runs qemu.sh with its monitor on two pipes, and injects an
# uncorrected memory error when the guest asks for it: repro.sh
# prints "repro: inject now: vaddr V on vCPU 1" while its reader
# spins on vCPU 1. The monitor translates V there (gva2gpa); an
# address inside a dmem range the guest printed is injected (mce),
# anything else is asked again (vCPU 1 may be running another task).
# The console goes to stdout; KERNEL, INITRD, ACCEL as for qemu.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
mkfifo "$work/mon.in" "$work/mon.out" "$work/serial"
: > "$work/console" && : > "$work/monitor"
guest=$$
hmp() { printf '%s\n' "$*" > "$work/mon.in"; }
alive() { kill -0 "$guest" 2>/dev/null; }
# inside ADDR: whether ADDR is in one of the dmem ranges.
inside() {
	hex='\(0x[0-9a-f]*\)'
	sed -n "s/^repro: dmem range $hex $hex.*/\\1 \\2/p" \
		"$work/console" | while read -r lo hi; do
		[ $(($1)) -ge $((lo)) ] && [ $(($1)) -lt $((hi)) ] && echo yes
	done | grep -q yes
}
inject() {
	vaddr=
	while [ -z "$vaddr" ] && alive; do
		sleep 1
		vaddr=$(sed -n \
			's/^repro: inject now: vaddr \(0x[0-9a-f]*\).*/\1/p' \
			"$work/console")
	done
	pa=
	i=0
	while [ -n "$vaddr" ] && [ -z "$pa" ] && [ $i -lt 20 ] && alive
	do
		hmp cpu 1
		hmp gva2gpa "$vaddr"
		sleep 1
		gpa=$(sed -n 's/.*gpa: \(0x[0-9a-f]*\).*/\1/p' \
			"$work/monitor" | tail -n 1)
		if [ -n "$gpa" ] && inside "$gpa"; then
			pa=$(printf '0x%x' $((gpa - gpa % 4096)))
		fi
		i=$((i + 1))
	done
	if [ -n "$pa" ]; then
		# Bank 9: an uncorrected error with a valid address
		# (status); restartable IP, machine check in progress.
		mce="mce -b 0 9 0xbd000000000000c0 0x5 $pa 0x86"
		echo "inject.sh: $vaddr is $pa: $mce"
		hmp "$mce"
	elif alive; then
		echo "inject.sh: no address in a dmem range for ${vaddr:-?}"
		hmp quit
	fi
}
# The injector, beside the guest; it cleans up once QEMU is gone.
(
	inject
	while alive; do sleep 1; done
	rm -rf "$work"
) &
cat "$work/mon.out" > "$work/monitor" &
tee "$work/console" < "$work/serial" &
# QEMU takes this shell's pid (qemu.sh execs it too): a signal to
# this script reaches QEMU itself.
exec sh "$here/qemu.sh" -chardev "pipe,id=mon,path=$work/mon" \
	-mon chardev=mon,mode=readline > "$work/serial" 2>&1
