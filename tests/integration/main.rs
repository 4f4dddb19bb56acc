//! Integration tests: the real server (embedded broker, SQLite in a temporary directory, HTTP
//! on port 0), driven as devices over MQTT and as clients over HTTP.

mod helpers;

mod access;
mod api_errors;
mod auth;
mod bridge;
mod cli;
mod dashboard;
mod geofence;
mod historian;
mod ingest;
mod maps_cli;
mod mosquitto;
mod openapi;
mod restart;
mod simulate;
mod stream;
mod tracking;
mod transit_scenarios;
mod wire_contract;
