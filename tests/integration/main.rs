//! Integration tests: the real server (embedded broker, SQLite in a temporary directory or a
//! fresh PostgreSQL database, HTTP on port 0), driven as devices over MQTT and as clients over
//! HTTP.

mod helpers;
mod test_store;

mod access;
mod acknowledgements;
mod api_errors;
mod auth;
mod bridge;
mod cli;
mod dashboard;
mod deploy_ha;
mod device_tls;
mod device_trust;
mod drills;
mod evidence;
mod exchange;
mod exports;
mod first_hour;
mod first_steps;
mod geofence;
mod historian;
mod ingest;
mod intake;
mod maps_cli;
mod mosquitto;
mod mosquitto_shipped;
mod national_transits;
mod openapi;
mod operations;
mod restart;
mod server;
mod simulate;
mod standby;
mod stream;
mod tracking;
mod transit_scenarios;
mod wire_contract;
