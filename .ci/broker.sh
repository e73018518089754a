#!/usr/bin/env sh
# `make broker`: Debian's mosquitto on 127.0.0.1:PORT in the background (anonymous, loopback
# only), unless a broker (or anything) already listens there. Its config, log and pid file live
# in $TMPDIR/vadbridge-broker-PORT/.
set -eu
port="${1:-1883}"
listening() { python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', $port)))"; }
if listening; then
    echo "an MQTT broker already listens on 127.0.0.1:$port"
    exit 0
fi
binary=$(command -v mosquitto || echo /usr/sbin/mosquitto)
dir="${TMPDIR:-/tmp}/vadbridge-broker-$port"
mkdir -p "$dir"
cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
pid_file $dir/mosquitto.pid
user $(id -un)
log_dest file $dir/mosquitto.log
CONF
"$binary" -c "$dir/mosquitto.conf" -d
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    if listening; then
        echo "mosquitto listens on 127.0.0.1:$port (log: $dir/mosquitto.log; stop: kill \$(cat $dir/mosquitto.pid))"
        exit 0
    fi
    sleep 0.1
done
echo "mosquitto did not start; see $dir/mosquitto.log" >&2
exit 1
