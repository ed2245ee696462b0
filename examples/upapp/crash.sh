# The demo's crasher: works for 3 s, then fails. Run with -auto-restart crash,
# tether up restarts it after a delay that doubles each time (100ms, 200ms,
# 400ms, ... up to -backoff-max); without it, its failure stops everything.
echo "working (pid $$)"
sleep 3
echo "crash: something went wrong, exiting with code 1" >&2
exit 1
