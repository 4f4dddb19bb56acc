//! Integration tests: the real server (embedded broker, SQLite in a temporary directory, HTTP
//! on port 0), driven as devices over MQTT and as clients over HTTP.

mod helpers;

mod api_errors;
mod cli;
mod historian;
mod ingest;
mod mosquitto;
mod restart;
mod tracking;
mod wire_contract;
