# shellcheck shell=bash
# scripts/lib/port.sh — a port for a test server that cannot listen on
# port 0 (versitygw, HAProxy), shared by the libraries that start them.
#
#   port=$(port_pick) || ...   # then start the server on 127.0.0.1:$port;
#                              # if it reports "address already in use",
#                              # pick again (another process took it first)
#
# port_pick prints a port between 10000 and the start of the kernel's
# ephemeral range that nothing listens on now. The kernel never hands out
# ports below that range on its own (port 0, outgoing connections), so
# only another server choosing the same way can race for it, and the
# caller's retry handles that.
port_pick() {
  local low=32768 port i
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range || true
  [ "$low" -gt 11024 ] || low=61000 # an unusual range: use the space above it
  for ((i = 0; i < 50; i++)); do
    if [ "$low" = 61000 ]; then
      port=$((61000 + RANDOM % 4000))
    else
      port=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
    fi
    if [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
      echo "$port"
      return 0
    fi
  done
  return 1
}
