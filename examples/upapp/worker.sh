# The demo's worker: a line every $WORKER_INTERVAL seconds; on SIGTERM it
# finishes politely (tether up sends SIGTERM to the whole tree when it stops).
trap 'echo "worker: SIGTERM, finishing job $n: bye"; exit 0' TERM
n=0
while :; do
	n=$((n + 1))
	echo "job $n done ($GREETING)"
	# In the background, so that the trap runs at once rather than after sleep.
	sleep "${WORKER_INTERVAL:-1}" &
	wait $!
done
