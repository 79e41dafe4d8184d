//! Making certificates: a CA, and node, admin and staff certificates
//! signed by it, each carrying its identity as the module above describes.
//! Used by `hopluu cert`, the test harnesses and `hopluu demo`.
//!
//! Keys are ECDSA P-256 (ring). A CA signs end-entity certificates only
//! (path length 0); validity starts an hour back, for clocks a little
//! behind.

use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use super::{CertInfo, Identity, TlsError, check_account_name, node_dns_name};
use hopluu_model::UnitId;

/// The organisation named in every subject.
const ORGANISATION: &str = "hopluu";

/// Who a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A node; `dns` and `ips` are extra names it is reachable by (its
    /// `<node_id>.node.hopluu` name is always included).
    Node {
        node_id: String,
        unit: String,
        dns: Vec<String>,
        ips: Vec<IpAddr>,
    },
    Admin {
        name: String,
    },
    Staff {
        name: String,
        unit: String,
    },
}

impl Subject {
    pub fn node(node_id: &str, unit: &str) -> Subject {
        Subject::Node {
            node_id: node_id.to_owned(),
            unit: unit.to_owned(),
            dns: Vec::new(),
            ips: Vec::new(),
        }
    }

    pub fn admin(name: &str) -> Subject {
        Subject::Admin {
            name: name.to_owned(),
        }
    }

    pub fn staff(name: &str, unit: &str) -> Subject {
        Subject::Staff {
            name: name.to_owned(),
            unit: unit.to_owned(),
        }
    }

    /// Adds names a node is reachable by.
    pub fn reachable_at(mut self, more_dns: &[&str], more_ips: &[IpAddr]) -> Subject {
        if let Subject::Node { dns, ips, .. } = &mut self {
            dns.extend(more_dns.iter().map(|d| (*d).to_owned()));
            ips.extend_from_slice(more_ips);
        }
        self
    }

    /// The identity the certificate will carry (its ids checked).
    pub fn identity(&self) -> Result<Identity, TlsError> {
        let unit = |u: &str| UnitId::parse("unit", u).map_err(|e| TlsError::Issue(e.to_string()));
        let name =
            |n: &str| check_account_name(n).map_err(|e| TlsError::Issue(format!("name: {e}")));
        Ok(match self {
            Subject::Node {
                node_id, unit: u, ..
            } => {
                node_dns_name(node_id).map_err(|e| TlsError::Issue(e.to_string()))?;
                Identity::Node {
                    node_id: node_id.clone(),
                    unit: unit(u)?,
                }
            }
            Subject::Admin { name: n } => Identity::Admin { name: name(n)? },
            Subject::Staff { name: n, unit: u } => Identity::Staff {
                name: name(n)?,
                unit: unit(u)?,
            },
        })
    }

    /// The files' stem: the node id, or the account name.
    pub fn file_stem(&self) -> &str {
        match self {
            Subject::Node { node_id, .. } => node_id,
            Subject::Admin { name } | Subject::Staff { name, .. } => name,
        }
    }
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field(
                "cert",
                &CertInfo::from_pem(&self.cert_pem).map(|i| i.subject),
            )
            .finish_non_exhaustive()
    }
}

impl Issued {
    pub fn info(&self) -> CertInfo {
        CertInfo::from_pem(&self.cert_pem).expect("a certificate this module made")
    }

    /// Writes `DIR/<stem>.pem` and `DIR/<stem>.key` (mode 0600), refusing
    /// to overwrite either. Returns both paths.
    pub fn write_new(
        &self,
        dir: &Path,
        stem: &str,
    ) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        for p in [&cert, &key] {
            if p.exists() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} already exists: refusing to overwrite it", p.display()),
                ));
            }
        }
        write_new(&key, &self.key_pem, true)?;
        write_new(&cert, &self.cert_pem, false)?;
        Ok((cert, key))
    }
}

/// Creates `path` with `contents`, failing if it exists; a `secret` file is
/// readable by its owner only (0600) from its creation on.
pub fn write_new(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} already exists: refusing to overwrite it",
                    path.display()
                )
            } else {
                format!("cannot create {}: {e}", path.display())
            },
        )
    })?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// A certificate authority: its certificate and the key that signs.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field(
                "cert",
                &CertInfo::from_pem(&self.cert_pem).map(|i| i.subject),
            )
            .finish_non_exhaustive()
    }
}

fn issue_err(e: rcgen::Error) -> TlsError {
    TlsError::Issue(e.to_string())
}

/// Validity from an hour ago to `days` days from now.
fn validity(params: &mut CertificateParams, days: u32) -> Result<(), TlsError> {
    if !(1..=36_500).contains(&days) {
        return Err(TlsError::Issue(format!(
            "days: must be 1 to 36500, got {days}"
        )));
    }
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive, and without a leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

impl Ca {
    /// A new self-signed CA named `name`, valid for `days` days.
    pub fn generate(name: &str, days: u32) -> Result<Ca, TlsError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(TlsError::Issue(
                "name: a CA name has 1 to 64 characters".into(),
            ));
        }
        let mut params = CertificateParams::default();
        validity(&mut params, days)?;
        params.serial_number = Some(random_serial());
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, ORGANISATION);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(issue_err)?;
        let cert = params.self_signed(&key).map_err(issue_err)?;
        let key_pem = key.serialize_pem();
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its certificate and key (as `hopluu cert ca` wrote them).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, TlsError> {
        let info = CertInfo::from_pem(cert_pem)?;
        if !info.is_ca {
            return Err(TlsError::Parse(format!(
                "{} is not a CA certificate",
                info.subject
            )));
        }
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| TlsError::Parse(format!("not a PEM private key: {e}")))?;
        let der = &super::pem_certificates(cert_pem)?[0];
        let (_, x509) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::Parse(format!("not an X.509 certificate: {e}")))?;
        if rcgen::PublicKeyData::der_bytes(&key)
            != x509.public_key().subject_public_key.data.as_ref()
        {
            return Err(TlsError::Parse(format!(
                "the key is not the key of the CA certificate {}",
                info.subject
            )));
        }
        let der = tonic::transport::CertificateDer::from(der.clone());
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(issue_err)?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn info(&self) -> CertInfo {
        CertInfo::from_pem(&self.cert_pem).expect("a CA certificate parses")
    }

    /// Writes `DIR/ca.pem` and `DIR/ca.key` (0600), refusing to overwrite.
    pub fn write_new(
        &self,
        dir: &Path,
    ) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
        Issued {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
        .write_new(dir, "ca")
    }

    /// A certificate for `subject`, valid for `days` days, with a new key.
    pub fn issue(&self, subject: &Subject, days: u32) -> Result<Issued, TlsError> {
        let identity = subject.identity()?;
        let uri = identity.uri().expect("a subject has an identity");
        let mut params = CertificateParams::default();
        validity(&mut params, days)?;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, subject.file_stem());
        dn.push(DnType::OrganizationName, ORGANISATION);
        if let Subject::Staff { unit, .. } = subject {
            dn.push(DnType::OrganizationalUnitName, unit.as_str());
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let ia5 = |s: &str, what: &str| {
            rcgen::string::Ia5String::try_from(s)
                .map_err(|e| TlsError::Issue(format!("{what} {s:?}: {e}")))
        };
        params.subject_alt_names = vec![SanType::URI(ia5(&uri, "URI")?)];
        match subject {
            Subject::Node {
                node_id, dns, ips, ..
            } => {
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
                let own = node_dns_name(node_id).map_err(|e| TlsError::Issue(e.to_string()))?;
                params
                    .subject_alt_names
                    .push(SanType::DnsName(ia5(&own, "dns")?));
                for d in dns {
                    check_dns_name(d)?;
                    params
                        .subject_alt_names
                        .push(SanType::DnsName(ia5(d, "dns")?));
                }
                for ip in ips {
                    params.subject_alt_names.push(SanType::IpAddress(*ip));
                }
            }
            Subject::Admin { .. } | Subject::Staff { .. } => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let key = KeyPair::generate().map_err(issue_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(issue_err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A DNS name a certificate can carry: dot-separated labels of letters,
/// digits, '-' and '_' (not at a label's ends for '-'), at most 253
/// characters; `*.` only as the first label.
pub fn check_dns_name(name: &str) -> Result<(), TlsError> {
    let bad = || {
        TlsError::Issue(format!(
            "dns: {name:?} is not a DNS name (labels of letters, digits, '-' and '_', separated by dots)"
        ))
    };
    let rest = name.strip_prefix("*.").unwrap_or(name);
    if rest.is_empty() || name.len() > 253 {
        return Err(bad());
    }
    for label in rest.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(bad());
        }
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(TlsError::Issue(format!(
            "dns: {name:?} is an IP address: give it with --ip"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_carry_their_identity_and_names() {
        let ca = Ca::generate("hopluu test CA", 30).unwrap();
        assert!(ca.info().is_ca);
        let node = ca
            .issue(
                &Subject::node("hg-node", "hau-giang")
                    .reachable_at(&["hau-giang.congdoan.vn"], &["127.0.0.1".parse().unwrap()]),
                10,
            )
            .unwrap();
        let info = node.info();
        assert_eq!(
            info.identity,
            Some(Identity::Node {
                node_id: "hg-node".into(),
                unit: UnitId::parse("u", "hau-giang").unwrap()
            })
        );
        assert_eq!(
            info.dns_names,
            vec!["hg-node.node.hopluu", "hau-giang.congdoan.vn"]
        );
        assert_eq!(
            info.ip_addresses,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(!info.is_ca);
        assert!((9..=10).contains(&info.days_left(std::time::SystemTime::now())));
        assert!(info.subject.contains("CN=hg-node"), "{}", info.subject);

        let staff = ca
            .issue(&Subject::staff("clerk.a", "hg-truong-a"), 5)
            .unwrap();
        assert_eq!(
            staff.info().identity.unwrap().to_string(),
            "staff clerk.a (unit hg-truong-a)"
        );
        // A CA read back from its files issues certificates too.
        let again = Ca::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        let admin = again.issue(&Subject::admin("root"), 5).unwrap();
        assert_eq!(admin.info().issuer, ca.info().subject);

        assert!(ca.issue(&Subject::admin("Nguyễn"), 5).is_err());
        assert!(ca.issue(&Subject::node("Bad Id", "hg"), 5).is_err());
        assert!(
            ca.issue(&Subject::node("hg", "hg").reachable_at(&["a..b"], &[]), 5)
                .is_err()
        );
        assert!(Ca::from_pem(admin.cert_pem.as_str(), admin.key_pem.as_str()).is_err());
        assert!(Ca::from_pem(ca.cert_pem(), &admin.key_pem).is_err());
    }
}
