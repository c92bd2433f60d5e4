# Eight threads write every page of one dmemfs file at once:
# racing first faults on each page. With the bug every racer takes
# a dpage of its own (xa_store() replaces the winner's entry), the
# file holds more dpages than pages, and its unlink then hits
# BUG_ON(nrexceptional) in clear_inode(); at 2M the loser also
# WARNs in vmf_insert_pfn_pmd_prot. Fixed, every try takes one dpage
# per page and unlinks cleanly.
#   SIZE   the mount's page size (4K or 2M)
#   UNTIL  race: stop at the first try that takes too many dpages;
#          warn: at the first after which the kernel log has the WARN
#   TRIES  the most tries (the race fires in some tries only)
SIZE=${SIZE:-4K}
UNTIL=${UNTIL:-race}
TRIES=${TRIES:-10}
case $SIZE in
4K) page=4096 pages=256 ;;
2M) page=2097152 pages=32 ;;
*) echo "repro: RESULT error: SIZE is 4K or 2M"; exit 0 ;;
esac
warning='WARNING:.*vmf_insert_pfn_p[mu]d'
stats=/sys/kernel/debug/dmem
mkdir -p /mnt/dmem
if ! grep -qw dmemfs /proc/filesystems; then
	echo "repro: RESULT absent: this kernel cannot mount dmemfs"
	exit 0
fi
if ! mount -t dmemfs -o "pagesize=$SIZE" none /mnt/dmem; then
	echo "repro: RESULT error: dmemfs is there, the mount failed"
	exit 0
fi
if [ ! -r $stats/free_dpages ]; then
	echo "repro: RESULT error: no $stats/free_dpages to count with"
	exit 0
fi
t=1
while [ $t -le "$TRIES" ]; do
	f=/mnt/dmem/th$t
	truncate -s 0 "$f"
	before=$(cat $stats/free_dpages)
	out=$(pool-edge --case threads --file "$f" --page $page \
		--pages $pages --threads 8)
	used=$((before - $(cat $stats/free_dpages)))
	echo "repro: try $t: $used dpages taken for $pages pages"
	case $out in
	*'"verified":true'*) ;;
	*) echo "$out"
		echo "repro: RESULT error: the threads did not fill it"
		exit 0 ;;
	esac
	raced=no
	[ "$used" -gt "$pages" ] && raced=yes
	if [ $raced = yes ]; then
		echo "$out"
		echo "repro: the race fired: $((used - pages)) too many"
	fi
	rm -f "$f"
	echo "repro: unlink after try $t: exit status $?"
	seen=$raced
	if [ "$UNTIL" = warn ]; then
		seen=no
		dmesg | grep -q "$warning" && seen=yes
	fi
	if [ $seen = yes ]; then
		echo "repro: RESULT bug: seen at try $t"
		exit 0
	fi
	t=$((t + 1))
done
echo "repro: RESULT no-bug: one dpage per page in $TRIES tries"
