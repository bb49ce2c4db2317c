//! TLS for the daemon's listener and for `apiprof report https://...`: PEM files read
//! with errors that name the file and the fix, and rustls configurations on the `ring`
//! provider (the one kube and reqwest already use; no second crypto library).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    ClientConfig, RootCertStore, ServerConfig,
};

/// A TLS file that cannot be used, or files that do not go together.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No certificate in a certificate file.
    #[error("{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it; pass a PEM certificate file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No key in a key file.
    #[error("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it; pass the PEM key of the certificate", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate rustls cannot trust.
    #[error("{}: not a valid CA certificate; pass the PEM certificate of the CA that signs the certificates", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// A certificate and a key that do not match (or an unsupported key).
    #[error("{} and {} do not make a certificate and its key; pass the key the certificate was issued for", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// No client certificate verifier could be made of the CA file.
    #[error("{}: no usable client CA", path.display())]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}

/// The crypto provider of every TLS configuration apiprof makes.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in the PEM file `path` (a chain, or CAs); at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: path.to_owned(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in the PEM file `path`.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|_| TlsError::NoKey {
        path: path.to_owned(),
    })
}

/// The CAs in the PEM file `path`, as trust roots.
fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

/// What the daemon's listener serves: its certificate and key, and the CA client
/// certificates must be signed by, if any.
#[derive(Clone, Debug)]
pub struct ServerFiles {
    /// The certificate (chain), PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// The CAs of client certificates, PEM; none: no client certificate asked for.
    pub client_ca: Option<PathBuf>,
}

impl ServerFiles {
    /// The files, all of them.
    pub fn paths(&self) -> Vec<PathBuf> {
        [&self.cert, &self.key]
            .into_iter()
            .chain(&self.client_ca)
            .cloned()
            .collect()
    }

    /// A server configuration from the files as they are now: HTTP/1.1, and client
    /// certificates required when there is a client CA.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|source| TlsError::Verifier {
                        path: ca.clone(),
                        source,
                    })?,
            ),
        };
        let mut config = builder
            .with_single_cert(certificates(&self.cert)?, private_key(&self.key)?)
            .map_err(|source| TlsError::Pair {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A client configuration trusting the CAs in `ca` (else the system's), presenting
/// `identity` (certificate chain, key) if given.
pub fn client_config(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    let roots = match ca {
        Some(ca) => roots(ca)?,
        None => {
            let mut roots = RootCertStore::empty();
            // Unreadable system certificates are skipped, as reqwest skips them.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            roots
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|source| TlsError::Pair {
                cert: cert.to_owned(),
                key: key.to_owned(),
                source,
            }),
    }
}
