#!/usr/bin/env bash
# Checks deploy/mosquitto/mosquitto.conf and deploy/mosquitto/acl against a real Mosquitto:
# starts a copy of the configuration on free loopback ports with a temporary password file and
# persistence directory, then proves with mosquitto_pub / mosquitto_sub that
#   - a device publishes under its own caravan/v1/dev/{id}/ and not under another device's,
#   - a device cannot read other devices' topics or publish dead letters,
#   - clients without credentials, or with a wrong password, are refused on the device port,
#   - the `caravan` user and the anonymous loopback listener can subscribe to every device
#     topic and publish dead letters, and the anonymous listener cannot pose as a device,
#   - the broker publishes a device's retained `offline` will when its connection drops,
#   - Caravan's persistent session keeps QoS 1 messages while Caravan is away, across a
#     broker restart.
# Needs: mosquitto, mosquitto-clients (mosquitto_pub, mosquitto_sub, mosquitto_passwd),
# python3 (for free ports). Usage: deploy/mosquitto/check-acl.sh   (exit 0 = every check passed)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
broker_pid=
bg_pids=()
cleanup() {
    for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1; broker log:" >&2
    cat "$work/mosquitto.log" >&2
    return 1
}

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then
        echo "ok    $what"
        passed=$((passed + 1))
    else
        echo "FAIL  $what"
        failed=$((failed + 1))
    fi
}

device_port=$(free_port)
local_port=$(free_port)

# The configuration under test, with ports and paths moved into the temporary directory.
# When run as root, Mosquitto would switch to the `mosquitto` user, which cannot read the
# temporary directory; `user` keeps the current user (ignored when not root).
sed -e "s|^listener 1883 0.0.0.0|listener $device_port 127.0.0.1|" \
    -e "s|^listener 1884 127.0.0.1|listener $local_port 127.0.0.1|" \
    -e "s|/etc/mosquitto/passwd|$work/passwd|" \
    -e "s|/etc/mosquitto/acl|$work/acl|" \
    -e "s|^persistence_location .*|persistence_location $work/data/|" \
    "$here/mosquitto.conf" >"$work/mosquitto.conf"
echo "user $(id -un)" >>"$work/mosquitto.conf"
grep -q "^listener $device_port " "$work/mosquitto.conf"
grep -q "^listener $local_port " "$work/mosquitto.conf"
cp "$here/acl" "$work/acl"
mkdir "$work/data"

# Two devices, the service users, an operator.
touch "$work/passwd"
for user in 356307042441013:dev1-secret 356307042441014:dev2-secret caravan:caravan-secret \
    firmware-bridge:bridge-secret operator:operator-secret; do
    mosquitto_passwd -b "$work/passwd" "${user%%:*}" "${user#*:}"
done

start_broker() {
    mosquitto -c "$work/mosquitto.conf" >>"$work/mosquitto.log" 2>&1 &
    broker_pid=$!
    wait_for_port "$device_port"
    wait_for_port "$local_port"
}

stop_broker() {
    kill -TERM "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
}

DEV1=356307042441013
DEV2=356307042441014
dev1=(-p "$device_port" -u "$DEV1" -P dev1-secret)
dev2=(-p "$device_port" -u "$DEV2" -P dev2-secret)
caravan=(-p "$device_port" -u caravan -P caravan-secret)
bridge=(-p "$device_port" -u firmware-bridge -P bridge-secret)
operator=(-p "$device_port" -u operator -P operator-secret)
anonymous_local=(-p "$local_port")

# The listeners refuse empty client ids (allow_zero_length_clientid false), so every client
# below names itself.
client_n=0
pub() { # pub CLIENT_ARGS... -- TOPIC PAYLOAD: QoS 1, exits when the broker acknowledged it
    local args=()
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    client_n=$((client_n + 1))
    mosquitto_pub -h 127.0.0.1 -q 1 -i "check-pub-$client_n" "${args[@]}" -t "$2" -m "$3"
}

# A subscriber in the background, printing "topic payload" lines into a file.
subscribe() { # subscribe NAME CLIENT_ARGS... -- FILTER
    local name=$1
    shift
    local args=()
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    mosquitto_sub -h 127.0.0.1 -q 1 -v -i "check-sub-$name" "${args[@]}" -t "$2" \
        >"$work/$name.out" 2>"$work/$name.err" &
    bg_pids+=($!)
}

# Waits until every background subscriber has received its probe, so that nothing published
# afterwards can be missed because a subscription was not yet in place.
wait_subscribed() { # wait_subscribed NAME PROBE_PUBLISHER_ARGS... -- PROBE_TOPIC
    local name=$1
    shift
    local args=()
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    for _ in $(seq 1 50); do
        pub "${args[@]}" -- "$2" "probe"
        if grep -q "^$2 probe$" "$work/$name.out"; then return 0; fi
        sleep 0.1
    done
    echo "subscriber $name never received its probe" >&2
    cat "$work/$name.err" >&2
    return 1
}

seen() { grep -qx -- "$2" "$work/$1.out"; }
not_seen() { ! grep -q -- "$2" "$work/$1.out"; }
refused() { ! "$@" >/dev/null 2>&1; }

start_broker

# --- Subscribers -----------------------------------------------------------------------------
subscribe caravan "${caravan[@]}" -- 'caravan/v1/dev/+/+'
subscribe local "${anonymous_local[@]}" -- 'caravan/v1/dev/+/+'
subscribe operator "${operator[@]}" -- 'caravan/v1/rejected/#'
subscribe dev1_snoop "${dev1[@]}" -- 'caravan/v1/dev/+/+'
wait_subscribed caravan "${dev2[@]}" -- "caravan/v1/dev/$DEV2/status"
wait_subscribed local "${dev2[@]}" -- "caravan/v1/dev/$DEV2/status"
wait_subscribed operator "${caravan[@]}" -- caravan/v1/rejected/malformed

# --- Publishing --------------------------------------------------------------------------------
pub "${dev1[@]}" -- "caravan/v1/dev/$DEV1/pos" own-pos
pub "${dev1[@]}" -- "caravan/v1/dev/$DEV2/pos" forged-pos
pub "${dev1[@]}" -- caravan/v1/rejected/malformed forged-dead-letter
pub "${anonymous_local[@]}" -- "caravan/v1/dev/$DEV1/pos" anonymous-pos
pub "${bridge[@]}" -- "caravan/v1/dev/$DEV2/seal" bridge-seal
pub "${bridge[@]}" -- "caravan/v1/dev/$DEV2/conn" bridge-conn
pub "${anonymous_local[@]}" -- caravan/v1/rejected/oversize local-dead-letter
pub "${dev2[@]}" -- "caravan/v1/dev/$DEV2/pos" dev2-pos
# The last message is published after all the others on one broker, so once it has arrived
# everything before it that was allowed has arrived too.
pub "${dev2[@]}" -- "caravan/v1/dev/$DEV2/status" last
for _ in $(seq 1 50); do
    grep -q " last$" "$work/caravan.out" && grep -q " last$" "$work/local.out" && break
    sleep 0.1
done
sleep 0.3

check "a device publishes under its own id" seen caravan "caravan/v1/dev/$DEV1/pos own-pos"
check "a device cannot publish under another device's id" not_seen caravan forged-pos
check "a device cannot publish dead letters" not_seen operator forged-dead-letter
check "a device cannot read other devices' topics" not_seen dev1_snoop dev2-pos
check "the caravan user receives every device's messages" seen caravan "caravan/v1/dev/$DEV2/pos dev2-pos"
check "the anonymous loopback client receives every device's messages" seen local "caravan/v1/dev/$DEV2/pos dev2-pos"
check "the anonymous loopback client cannot pose as a device" not_seen caravan anonymous-pos
check "the bridge publishes pos/seal/status for its devices" seen caravan "caravan/v1/dev/$DEV2/seal bridge-seal"
check "the bridge cannot publish conn" not_seen caravan bridge-conn
check "the caravan user publishes dead letters" seen operator "caravan/v1/rejected/malformed probe"
check "the anonymous loopback client publishes dead letters" seen operator "caravan/v1/rejected/oversize local-dead-letter"

# --- Connecting --------------------------------------------------------------------------------
check "no credentials on the device port: refused" \
    refused pub -p "$device_port" -- "caravan/v1/dev/$DEV1/pos" x
check "a wrong password: refused" \
    refused pub -p "$device_port" -u "$DEV1" -P wrong -- "caravan/v1/dev/$DEV1/pos" x
check "a device name with a wrong password on the loopback port: refused" \
    refused pub -p "$local_port" -u "$DEV1" -P wrong -- "caravan/v1/dev/$DEV1/pos" x

# --- The device's will: retained `offline` when its connection drops ---------------------------
pub "${dev1[@]}" -- "caravan/v1/dev/$DEV1/conn" online
mosquitto_sub -h 127.0.0.1 "${dev1[@]}" -i "$DEV1" -k 5 -t "caravan/v1/dev/$DEV1/cmd" \
    --will-topic "caravan/v1/dev/$DEV1/conn" --will-payload offline --will-qos 1 --will-retain \
    >/dev/null 2>&1 &
will_pid=$!
sleep 0.5
# No DISCONNECT: the broker sees the socket close and publishes the will.
{ kill -KILL "$will_pid" && wait "$will_pid"; } 2>/dev/null || true
for _ in $(seq 1 50); do
    grep -q "^caravan/v1/dev/$DEV1/conn offline$" "$work/caravan.out" && break
    sleep 0.1
done
check "the broker publishes the will when a device drops" \
    seen caravan "caravan/v1/dev/$DEV1/conn offline"
retained=$(mosquitto_sub -h 127.0.0.1 -i check-retained "${caravan[@]}" -t "caravan/v1/dev/$DEV1/conn" -C 1 -W 3 2>/dev/null || true)
check "the will is retained for later subscribers" test "$retained" = offline

# --- Caravan's persistent session, across a broker restart --------------------------------------
# Caravan's ingest: clean_session = false, fixed client id, QoS 1.
session=(-p "$local_port" -i caravan-ingest -c -q 1)
mosquitto_sub -h 127.0.0.1 "${session[@]}" -t 'caravan/v1/dev/+/pos' -C 1 -W 5 >/dev/null 2>&1 &
first=$!
sleep 0.5
pub "${dev1[@]}" -- "caravan/v1/dev/$DEV1/pos" session-start
wait "$first" || true
# Caravan is away: three messages arrive for it, then the broker restarts.
for n in 1 2 3; do pub "${dev1[@]}" -- "caravan/v1/dev/$DEV1/pos" "while-away-$n"; done
stop_broker
start_broker
got=$(mosquitto_sub -h 127.0.0.1 "${session[@]}" -t 'caravan/v1/dev/+/pos' -C 3 -W 5 2>/dev/null || true)
check "messages queued for Caravan's session survive a broker restart" \
    test "$got" = "$(printf 'while-away-1\nwhile-away-2\nwhile-away-3')"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
