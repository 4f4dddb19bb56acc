#!/usr/bin/env bash
# The README's first steps as one script, against a running `caravan serve`: registers a
# device, publishes one position as that device, reads it back, and declares a transit for it
# from declaration.json (beside this script) with a deadline two days from now.
#
#   export CARAVAN_TOKEN=cvn_...        # the coordinator token of the first start
#   examples/first-steps.sh
#
# CARAVAN (the command, default: cargo run --release --), CARAVAN_API (default
# http://127.0.0.1:8080) and CARAVAN_MQTT_PORT (default 1883) say where else to find them.
# Needs mosquitto_pub (Debian: mosquitto-clients), curl and GNU date. Runs once per store: a
# second run finds the device registered and the transit declared.
set -euo pipefail

: "${CARAVAN_TOKEN:?export the coordinator token of the first start as CARAVAN_TOKEN}"
caravan=${CARAVAN:-cargo run --release --quiet --}
api=${CARAVAN_API:-http://127.0.0.1:8080}
mqtt_port=${CARAVAN_MQTT_PORT:-1883}
here=$(cd "$(dirname "$0")" && pwd)
device=356307042441013
auth="Authorization: Bearer $CARAVAN_TOKEN"

echo "== Register the device; its MQTT credential is shown once"
registered=$($caravan device add "$device" --carrier kg-trans --plate 01KG123ABC --api "$api")
echo "$registered"
password=$(sed -n 's/^MQTT password: //p' <<<"$registered")

echo "== Publish a position as the device"
mosquitto_pub -p "$mqtt_port" -q 1 -i "$device" -u "$device" -P "$password" \
  -t "caravan/v1/dev/$device/pos" \
  -m '{"seq": 1, "t": "'"$(date -u +%FT%TZ)"'", "lat": 39.681, "lon": 73.9215, "speed_kmh": 54.2}'

echo "== Read it back: the device, its track of the last hour, its events"
curl -fsS -H "$auth" "$api/api/v1/devices/$device"; echo
curl -fsS -H "$auth" "$api/api/v1/devices/$device/track?from=$(date -u -d '1 hour ago' +%FT%TZ)"; echo
curl -fsS -H "$auth" "$api/api/v1/devices/$device/events"; echo

echo "== Declare a transit: Kashgar, Irkeshtam, Osh"
sed "s/DEADLINE/$(date -u -d '2 days' +%FT%TZ)/" "$here/declaration.json" |
  curl -fsS -H "$auth" -H 'content-type: application/json' -d @- "$api/api/v1/transits"; echo
curl -fsS -H "$auth" "$api/api/v1/transits/CN-24CN0101-000123"; echo
