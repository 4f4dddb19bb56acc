/// An MQTT address: Caravan's own endpoint, or an external broker's URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("broker URL {url:?} must look like mqtt://HOST:PORT ({why})")]
pub struct BrokerUrlError {
    url: String,
    why: &'static str,
}

impl BrokerAddr {
    /// Parses `mqtt://HOST[:PORT]` (`tcp://` is accepted too); the port defaults to 1883.
    ///
    /// # Errors
    /// Another scheme (TLS belongs to a proxy in front of the broker), or a bad port.
    pub fn parse(url: &str) -> Result<Self, BrokerUrlError> {
        let error = |why| BrokerUrlError {
            url: url.to_owned(),
            why,
        };
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| error("the scheme must be mqtt://"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                let port = port
                    .parse()
                    .map_err(|_| error("the port is not a number"))?;
                (host, port)
            }
            _ => (rest, 1883),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(error("the host is missing"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl From<std::net::SocketAddr> for BrokerAddr {
    fn from(addr: std::net::SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_url_gives_host_and_port() {
        let addr = BrokerAddr::parse("mqtt://broker.example:1884").unwrap();
        assert_eq!((addr.host.as_str(), addr.port), ("broker.example", 1884));
        assert_eq!(BrokerAddr::parse("mqtt://10.0.0.5").unwrap().port, 1883);
        assert_eq!(BrokerAddr::parse("mqtt://[::1]:1885").unwrap().host, "::1");
    }

    #[test]
    fn other_schemes_and_bad_ports_are_refused() {
        assert!(BrokerAddr::parse("mqtts://broker:8883").is_err());
        assert!(BrokerAddr::parse("broker:1883").is_err());
        assert!(BrokerAddr::parse("mqtt://broker:http").is_err());
        assert!(BrokerAddr::parse("mqtt://:1883").is_err());
    }
}
