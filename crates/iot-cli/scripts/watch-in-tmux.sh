#!/usr/bin/env bash
# Checks `iotctl tasks watch` in a real terminal: runs it in a detached tmux session against the embedded
# simulator, captures the screen while the task runs and after it ends, and checks that the bars, the statuses
# and the final line are drawn. Usage: crates/iot-cli/scripts/watch-in-tmux.sh [path/to/iotctl]
# Needs tmux. Exits non-zero when the screen is not what an operator should see.
set -euo pipefail
iotctl="${1:-target/debug/iotctl}"
session="iotctl-watch-$$"
task="a058db57bea4e89183b5f54d" # the running software task every --sim run starts with
out="$(mktemp -d)"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$out"' EXIT

# A 100x30 terminal; time runs 600 times faster so the task ends within seconds.
tmux new-session -d -s "$session" -x 100 -y 30 \
  "$iotctl --sim --sim-time-scale 600 tasks watch $task; echo \"exit=\$?\"; sleep 30"
sleep 1.5
tmux capture-pane -p -t "$session" > "$out/during.txt"
for _ in $(seq 1 60); do
  tmux capture-pane -p -t "$session" > "$out/after.txt"
  grep -q "exit=" "$out/after.txt" && break
  sleep 0.5
done

echo "--- while running"; cat "$out/during.txt"
echo "--- at the end"; cat "$out/after.txt"
# While running: progress bars (indicatif draws them with block characters) and the status names.
grep -qE '[█▉▊▋▌▍▎▏░#=>-]{3,}' "$out/during.txt" || { echo "no progress bar drawn" >&2; exit 1; }
grep -qiE 'success|processing|wait' "$out/during.txt" || { echo "no status shown" >&2; exit 1; }
# At the end: a final state and an exit code that says how the task ended (0 success, 5 failed).
grep -qE 'exit=(0|5)' "$out/after.txt" || { echo "watch did not end with its documented code" >&2; exit 1; }
echo "watch screen OK"
