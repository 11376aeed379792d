//! The HMAC-only `CryptoProvider` of feature `jwt-hs256` without `jwt`.
//!
//! jsonwebtoken 10 signs and checks through a process-wide
//! [`CryptoProvider`]; with neither of its own (`rust_crypto`, `aws_lc_rs`) compiled in, its
//! fallback panics on the first token. This one does HS256, HS384 and HS512 with RustCrypto's
//! `hmac` and `sha2` (the crates `rust_crypto` uses), and refuses every other algorithm with
//! [`ErrorKind::InvalidAlgorithm`]: never a panic. [`install`] makes it the process's provider
//! unless one is installed already, which is then kept.

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{new_error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The provider: HMAC with SHA-2, nothing else.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: no_rsa,
        extract_ec_public_key_coordinates: no_ec,
        compute_digest: digest,
    },
};

/// Makes [`PROVIDER`] jsonwebtoken's process-wide provider, unless one is installed already
/// (another crate's, the application's, or this one): that one is kept. Cheap after the first
/// call (one atomic load).
pub(super) fn install() {
    // An error only says which provider is already installed; it stays.
    let _ = PROVIDER.install_default();
}

/// An HMAC keyed with a token's secret, for one of the three SHA-2 sizes.
#[derive(Clone)]
enum Keyed {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl Keyed {
    /// The HMAC for `algorithm` keyed with the secret `key` gives: an algorithm that is not
    /// HMAC is refused first, as [`ErrorKind::InvalidAlgorithm`] (before the key is looked at,
    /// so that an RSA or EC key with its own algorithm is refused for the algorithm).
    fn new<'k>(algorithm: Algorithm, key: impl FnOnce() -> Result<&'k [u8]>) -> Result<Self> {
        fn keyed<M: Mac + hmac::digest::KeyInit>(secret: &[u8]) -> Result<M> {
            // HMAC takes a key of any length: this does not fail, but stays an error if it did.
            <M as Mac>::new_from_slice(secret).map_err(|_| new_error(ErrorKind::InvalidKeyFormat))
        }
        match algorithm {
            Algorithm::HS256 => Ok(Keyed::Hs256(keyed(key()?)?)),
            Algorithm::HS384 => Ok(Keyed::Hs384(keyed(key()?)?)),
            Algorithm::HS512 => Ok(Keyed::Hs512(keyed(key()?)?)),
            _ => Err(new_error(ErrorKind::InvalidAlgorithm)),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            Keyed::Hs256(_) => Algorithm::HS256,
            Keyed::Hs384(_) => Algorithm::HS384,
            Keyed::Hs512(_) => Algorithm::HS512,
        }
    }

    fn tag(&self, message: &[u8]) -> Vec<u8> {
        match self.clone() {
            Keyed::Hs256(mac) => mac.chain_update(message).finalize().into_bytes().to_vec(),
            Keyed::Hs384(mac) => mac.chain_update(message).finalize().into_bytes().to_vec(),
            Keyed::Hs512(mac) => mac.chain_update(message).finalize().into_bytes().to_vec(),
        }
    }

    /// Whether `tag` is the message's, compared in constant time.
    fn check(&self, message: &[u8], tag: &[u8]) -> bool {
        match self.clone() {
            Keyed::Hs256(mac) => mac.chain_update(message).verify_slice(tag).is_ok(),
            Keyed::Hs384(mac) => mac.chain_update(message).verify_slice(tag).is_ok(),
            Keyed::Hs512(mac) => mac.chain_update(message).verify_slice(tag).is_ok(),
        }
    }
}

impl Signer<Vec<u8>> for Keyed {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.tag(message))
    }
}

impl JwtSigner for Keyed {
    fn algorithm(&self) -> Algorithm {
        Keyed::algorithm(self)
    }
}

impl Verifier<Vec<u8>> for Keyed {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        if self.check(message, signature) {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for Keyed {
    fn algorithm(&self) -> Algorithm {
        Keyed::algorithm(self)
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let keyed = Keyed::new(*algorithm, || key.try_get_hmac_secret())?;
    Ok(Box::new(keyed))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let keyed = Keyed::new(*algorithm, || key.try_get_hmac_secret())?;
    Ok(Box::new(keyed))
}

/// JWK thumbprints (RFC 7638) only need a hash, which `sha2` has.
fn digest(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    match hash {
        ThumbprintHash::SHA256 => Sha256::digest(data).to_vec(),
        ThumbprintHash::SHA384 => Sha384::digest(data).to_vec(),
        ThumbprintHash::SHA512 => Sha512::digest(data).to_vec(),
    }
}

/// No RSA here (feature `jwt` has it): refused, not a panic.
fn no_rsa(_: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(new_error(ErrorKind::InvalidAlgorithm))
}

/// No EC here (feature `jwt` has it): refused, not a panic.
fn no_ec(_: &[u8], _: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    Err(new_error(ErrorKind::InvalidAlgorithm))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use jsonwebtoken::{decode, encode, Header, Validation};

    use super::*;

    /// RFC 7515 appendix A.1: a JWS signed with HS256 by someone else, and its key (the JWK's
    /// `k`, base64url).
    const RFC7515_A1: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC7515_A1_K: &str =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

    fn is_invalid_algorithm<T>(result: Result<T>) -> bool {
        matches!(
            result.map_err(|e| e.into_kind()),
            Err(ErrorKind::InvalidAlgorithm)
        )
    }

    #[test]
    fn hs256_checks_the_rfc_7515_example_and_refuses_a_changed_one() {
        install();
        let k = RFC7515_A1_K.replace('-', "+").replace('_', "/") + "==";
        let key = DecodingKey::from_base64_secret(&k).unwrap();
        let (message, signature) = RFC7515_A1.rsplit_once('.').unwrap();
        let verify = |m: &str, s: &str| {
            jsonwebtoken::crypto::verify(s, m.as_bytes(), &key, Algorithm::HS256)
        };
        assert_eq!(verify(message, signature), Ok(true));
        let changed = signature.replace('d', "e");
        assert_eq!(verify(message, &changed), Ok(false));
        assert_eq!(verify(&format!("{message}x"), signature), Ok(false));
        // The same tag as the one signed there.
        let signer = signer(
            &Algorithm::HS256,
            &EncodingKey::from_base64_secret(&k).unwrap(),
        );
        let tag = signer.unwrap().try_sign(message.as_bytes()).unwrap();
        let expected = verifier(&Algorithm::HS256, &key).unwrap();
        assert!(expected.verify(message.as_bytes(), &tag).is_ok());
        assert_eq!(tag.len(), 32);
    }

    #[test]
    fn hs256_hs384_and_hs512_sign_and_check_through_jsonwebtoken() {
        install();
        let claims = serde_json::json!({"exp": u64::MAX / 2, "sub": "alice"});
        let secret = b"0123456789abcdef0123456789abcdef";
        for (algorithm, len) in [
            (Algorithm::HS256, 32_usize),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            let token = encode(
                &Header::new(algorithm),
                &claims,
                &EncodingKey::from_secret(secret),
            );
            let token = token.unwrap();
            let signature = token.rsplit_once('.').unwrap().1;
            assert_eq!(signature.len(), (len * 4).div_ceil(3), "{algorithm:?}");
            let data = decode::<serde_json::Value>(
                &token,
                &DecodingKey::from_secret(secret),
                &Validation::new(algorithm),
            );
            assert_eq!(data.unwrap().claims, claims, "{algorithm:?}");
            let wrong = decode::<serde_json::Value>(
                &token,
                &DecodingKey::from_secret(b"another secret"),
                &Validation::new(algorithm),
            );
            assert!(
                matches!(
                    wrong.map_err(|e| e.into_kind()),
                    Err(ErrorKind::InvalidSignature)
                ),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn other_algorithms_are_refused_not_panicked_on() {
        install();
        let secret = EncodingKey::from_secret(b"secret");
        let rsa = DecodingKey::from_rsa_raw_components(&[0xc5; 256], &[1, 0, 1]);
        // `{"alg":"…"}`, base64url.
        for (algorithm, header) in [
            (Algorithm::RS256, "eyJhbGciOiJSUzI1NiJ9"),
            (Algorithm::PS256, "eyJhbGciOiJQUzI1NiJ9"),
            (Algorithm::ES256, "eyJhbGciOiJFUzI1NiJ9"),
            (Algorithm::ES384, "eyJhbGciOiJFUzM4NCJ9"),
            (Algorithm::EdDSA, "eyJhbGciOiJFZERTQSJ9"),
        ] {
            assert!(
                is_invalid_algorithm(signer(&algorithm, &secret)),
                "{algorithm:?}"
            );
            assert!(
                is_invalid_algorithm(verifier(&algorithm, &rsa)),
                "{algorithm:?}"
            );
            // Through jsonwebtoken, with a validation that asks for that algorithm.
            let token = format!("{header}.e30.c2ln");
            let result = decode::<serde_json::Value>(&token, &rsa, &Validation::new(algorithm));
            assert!(is_invalid_algorithm(result), "{algorithm:?}");
            let result = encode(&Header::new(algorithm), &serde_json::json!({}), &secret);
            assert!(is_invalid_algorithm(result), "{algorithm:?}");
        }
        // An HMAC algorithm with an RSA key: the key's format.
        assert!(matches!(
            verifier(&Algorithm::HS256, &rsa)
                .map(|_| ())
                .map_err(|e| e.into_kind()),
            Err(ErrorKind::InvalidKeyFormat)
        ));
        assert!(is_invalid_algorithm(no_rsa(b"der")));
        assert!(is_invalid_algorithm(no_ec(b"der", Algorithm::ES256)));
        assert_eq!(
            digest(b"abc", ThumbprintHash::SHA256)[..4],
            [0xba, 0x78, 0x16, 0xbf]
        );
        assert_eq!(digest(b"abc", ThumbprintHash::SHA384).len(), 48);
        assert_eq!(digest(b"abc", ThumbprintHash::SHA512).len(), 64);
    }

    static OTHER_USED: AtomicBool = AtomicBool::new(false);

    /// Another provider, which works as this one does and says that it was used.
    static OTHER: CryptoProvider = CryptoProvider {
        signer_factory: signer,
        verifier_factory: |algorithm, key| {
            OTHER_USED.store(true, Ordering::SeqCst);
            verifier(algorithm, key)
        },
        jwk_utils: JwkUtils::new_unimplemented(),
    };

    /// A provider installed before the first `Jwt` (which calls [`install`]) is kept. Each test
    /// runs in a process of its own under nextest; under `cargo test`, when another test
    /// installed first, there is nothing to check (and, working alike, either provider serves
    /// every test).
    #[test]
    fn a_provider_installed_first_is_kept() {
        if OTHER.install_default().is_err() {
            return;
        }
        install();
        let secret = b"0123456789abcdef0123456789abcdef";
        let claims = serde_json::json!({"exp": u64::MAX / 2});
        let token = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        );
        let key = DecodingKey::from_secret(secret);
        let data = decode::<serde_json::Value>(&token.unwrap(), &key, &Validation::default());
        assert_eq!(data.unwrap().claims, claims);
        assert!(
            OTHER_USED.load(Ordering::SeqCst),
            "the first provider was replaced"
        );
    }
}
