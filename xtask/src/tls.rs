//! Certificates for local TLS (`.antevus/tls`, made once, never committed):
//! a test CA and a server certificate for `localhost` and `127.0.0.1`
//! signed by it (PostgreSQL and, in the tests, the proxy's listener use
//! them), and a second, unrelated CA with its own server certificate (what
//! a client must refuse, and what a reload switches to).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::util::root;

/// The folder, `ANTEVUS_TEST_TLS_DIR` of the tests.
pub fn dir() -> PathBuf {
    root().join(".antevus/tls")
}

/// Makes the certificates if any is missing.
pub fn ensure() -> anyhow::Result<PathBuf> {
    let dir = dir();
    let names = [
        "ca.pem",
        "server.pem",
        "server.key",
        "other-ca.pem",
        "other-server.pem",
        "other-server.key",
    ];
    if names.iter().all(|name| dir.join(name).exists()) {
        return Ok(dir);
    }
    fs::create_dir_all(&dir)?;
    for (prefix, authority) in [
        ("", "Antevus local test CA"),
        ("other-", "Antevus unrelated test CA"),
    ] {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, authority);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate()?)?;
        let key = rcgen::KeyPair::generate()?;
        let server =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
                .signed_by(&key, &ca)?;
        fs::write(dir.join(format!("{prefix}ca.pem")), ca.pem())?;
        fs::write(dir.join(format!("{prefix}server.pem")), server.pem())?;
        let key_file = dir.join(format!("{prefix}server.key"));
        fs::write(&key_file, key.serialize_pem())?;
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600))?;
    }
    Ok(dir)
}
