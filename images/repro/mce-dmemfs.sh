# An uncorrected memory error in the dmemfs page a process reads.
# The reader (mce-victim, on vCPU 1) maps one page and reads it
# until SIGBUS or 30 s. This script prints where the page is and
# "inject now"; inject.sh on the host then asks QEMU's monitor for
# the page's guest-physical address on vCPU 1 (gva2gpa) and injects
# the error there (HMP mce). With the bug the error is "handled by
# dmem" and the reader is never signalled, and memtype_reserve()
# WARNs; fixed, it gets SIGBUS BUS_MCEERR_AR.
#   SIZE        the mount's page size (4K or 2M)
#   EARLY_KILL  vm.memory_failure_early_kill (0 or 1)
#   CHECK       sigbus: the RESULT says whether SIGBUS came;
#               warning: whether the kernel WARNed after the error
SIZE=${SIZE:-4K}
EARLY_KILL=${EARLY_KILL:-1}
CHECK=${CHECK:-sigbus}
mkdir -p /mnt/dmem
if ! grep -qw dmemfs /proc/filesystems; then
	echo "repro: RESULT absent: this kernel cannot mount dmemfs"
	exit 0
fi
if ! mount -t dmemfs -o "pagesize=$SIZE" none /mnt/dmem; then
	echo "repro: RESULT error: dmemfs is there, the mount failed"
	exit 0
fi
echo "$EARLY_KILL" > /proc/sys/vm/memory_failure_early_kill
# The dmem ranges: inject.sh injects only inside one.
hex='\(0x[0-9a-f]*\)'
say='repro: dmem range \1 \2'
dmesg | sed -n "s/.*dmem: register region \\[$hex - $hex\\].*/$say/p"
taskset -c 1 mce-victim --spin --file /mnt/dmem/victim \
	--size "$SIZE" --create --timeout 30 > /tmp/victim.json 2>&1 &
pid=$!
i=0
ready() { grep -q '"event":"ready"' /tmp/victim.json; }
while [ $i -lt 30 ] && ! ready; do
	sleep 1
	i=$((i + 1))
done
if ! ready; then
	cat /tmp/victim.json
	echo "repro: RESULT error: the reader never mapped its page"
	exit 0
fi
vaddr=$(sed -n 's/.*"vaddr":"\(0x[0-9a-f]*\)".*/\1/p' \
	/tmp/victim.json)
echo "repro: inject now: vaddr $vaddr on vCPU 1"
wait "$pid"
cat /tmp/victim.json
# A report's last lines reach the log a moment after it starts.
sleep 2
dmesg | grep -E 'Memory failure|handled by dmem|mce: \[Hardware'
warnings=$(dmesg | grep -c 'WARNING: ')
echo "repro: kernel warnings after the error: $warnings"
if ! dmesg | grep -q 'handled by dmem'; then
	echo "repro: RESULT error: the error never reached dmem's handler"
	exit 0
fi
case $CHECK in
warning)
	if [ "$warnings" -gt 0 ]; then
		echo "repro: RESULT bug: a WARNING after a handled error"
	else
		echo "repro: RESULT no-bug: no WARNING"
	fi ;;
*)
	if grep -q '"event":"sigbus"' /tmp/victim.json; then
		echo "repro: RESULT no-bug: the reader got SIGBUS"
	else
		echo "repro: RESULT bug: no SIGBUS for the poisoned page"
	fi ;;
esac
