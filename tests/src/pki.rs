//! A throwaway PKI made at test time with rcgen: a CA, a server certificate for
//! 127.0.0.1, a client certificate with distinctive bytes (its CN and serial), a
//! stranger (a client certificate of another CA) and a bearer token, as PEM files in a
//! temporary folder removed on drop.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use tempfile::TempDir;

/// The client certificate's common name: unique, so a match can only come from it.
pub const CLIENT_CN: &str = "client-cn-5eed1e55-SECRET";

/// The client certificate's serial number: as unlikely anywhere else.
pub const CLIENT_SERIAL: [u8; 13] = *b"serial\x7fCERT\x01\x02";

/// The bearer token in [`Pki::token`].
pub const TOKEN: &str = "listener-token-c4fe5ec7";

/// A client certificate and its key, as files.
pub struct Identity {
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// Its key, PEM.
    pub key: PathBuf,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate, PEM text.
    pub pem: String,
}

impl Identity {
    /// For reqwest.
    pub fn reqwest(&self) -> reqwest::Identity {
        let pem = [read(&self.cert), read(&self.key)].concat();
        reqwest::Identity::from_pem(&pem).expect("a PEM identity")
    }
}

/// The files, in a temporary folder.
pub struct Pki {
    dir: TempDir,
    /// The CA that signs the server's and the client's certificates, PEM.
    pub ca: PathBuf,
    /// The server's certificate (SAN 127.0.0.1, localhost and deploy/tls/'s
    /// apiprof.apiprof.svc), PEM.
    pub server_cert: PathBuf,
    /// Its key, PEM.
    pub server_key: PathBuf,
    /// The client, signed by [`Pki::ca`], CN [`CLIENT_CN`], serial [`CLIENT_SERIAL`].
    pub client: Identity,
    /// A client signed by another CA.
    pub stranger: Identity,
    /// A file holding [`TOKEN`] and a newline, as Secrets often do.
    pub token: PathBuf,
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// A CA named `name`: its certificate and its issuer.
fn ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("a self-signed CA");
    (cert, Issuer::new(params, key))
}

/// A leaf certificate signed by `issuer` and its key.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    names: &[&str],
    cn: &str,
    serial: Option<&[u8]>,
    usage: ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("a key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.serial_number = serial.map(SerialNumber::from_slice);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("a signed leaf");
    (cert, key)
}

impl Pki {
    /// Makes every file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_cert, issuer) = ca("apiprof test CA");
        let (server, server_key) = leaf(
            &issuer,
            &["127.0.0.1", "localhost", "apiprof.apiprof.svc"],
            "apiprof daemon",
            None,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let identity = |name: &str, (cert, key): (rcgen::Certificate, KeyPair)| Identity {
            cert: write(dir.path(), &format!("{name}.crt"), &cert.pem()),
            key: write(dir.path(), &format!("{name}.key"), &key.serialize_pem()),
            der: cert.der().to_vec(),
            pem: cert.pem(),
        };
        let client = identity(
            "client",
            leaf(
                &issuer,
                &[],
                CLIENT_CN,
                Some(&CLIENT_SERIAL),
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        );
        let (_, other) = ca("another CA");
        let stranger = identity(
            "stranger",
            leaf(
                &other,
                &[],
                "stranger",
                None,
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        );
        Self {
            ca: write(dir.path(), "ca.crt", &ca_cert.pem()),
            server_cert: write(dir.path(), "server.crt", &server.pem()),
            server_key: write(dir.path(), "server.key", &server_key.serialize_pem()),
            token: write(dir.path(), "token", &format!("{TOKEN}\n")),
            client,
            stranger,
            dir,
        }
    }

    /// The temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA, for reqwest.
    pub fn ca_certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&read(&self.ca)).expect("a PEM CA")
    }

    /// A client trusting only [`Pki::ca`], presenting `identity` if given, sending
    /// `token` as a bearer token if given.
    pub fn client(&self, identity: Option<&Identity>, token: Option<&str>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.ca_certificate());
        if let Some(identity) = identity {
            builder = builder.identity(identity.reqwest());
        }
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("a header value");
            builder = builder.default_headers(
                [(reqwest::header::AUTHORIZATION, value)]
                    .into_iter()
                    .collect(),
            );
        }
        builder.build().expect("an HTTPS client")
    }

    /// A client with everything a daemon of [`Pki::daemon_args`] asks for.
    pub fn authorized_client(&self) -> reqwest::Client {
        self.client(Some(&self.client), Some(TOKEN))
    }

    /// The daemon's flags serving TLS with client certificates of [`Pki::ca`] and
    /// [`TOKEN`].
    pub fn daemon_args(&self) -> Vec<String> {
        flags(&[
            ("--tls-cert", &self.server_cert),
            ("--tls-key", &self.server_key),
            ("--client-ca", &self.ca),
            ("--bearer-token-file", &self.token),
        ])
    }

    /// `apiprof report`'s flags for a daemon started with [`Pki::daemon_args`].
    pub fn report_args(&self) -> Vec<String> {
        flags(&[
            ("--ca-cert", &self.ca),
            ("--client-cert", &self.client.cert),
            ("--client-key", &self.client.key),
            ("--bearer-token-file", &self.token),
        ])
    }
}

/// `FLAG PATH` pairs as arguments.
fn flags(pairs: &[(&str, &Path)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(flag, path)| {
            [
                flag.to_string(),
                path.to_str().expect("UTF-8 path").to_owned(),
            ]
        })
        .collect()
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}
