//! AWS credentials, found the way the AWS SDKs' default chain finds them:
//! the keys in haproxide's configuration, then the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then
//! the profile (`aws-profile`, else `AWS_PROFILE`, else `default`) of the
//! shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`) and of the config file (`AWS_CONFIG_FILE`, else
//! `~/.aws/config`, whose sections are `[profile NAME]`), then the instance
//! role from the instance metadata service with IMDSv2's session token.
//!
//! The chain is walked again for every poll, so rotated keys in a file or
//! the environment are picked up; the instance role's keys are kept until
//! five minutes before they expire.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use crate::config::Ini;

/// Where the instance metadata service is on EC2.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// A key pair, and the session token of temporary keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// The access key ID.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// Where they came from, for the log (never the secret).
    pub origin: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Where to look besides the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSettings {
    /// Keys given in the configuration (both, or neither).
    pub configured: Option<(String, String)>,
    /// The profile of the shared files (`None`: `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// The instance metadata service, when configured (`None`:
    /// `$AWS_EC2_METADATA_SERVICE_ENDPOINT`, else [`DEFAULT_IMDS_ENDPOINT`]).
    pub imds_endpoint: Option<String>,
}

/// The chain, with the instance role's keys kept until they near expiry.
#[derive(Debug)]
pub struct Credentials {
    settings: CredentialSettings,
    instance_role: Option<(Keys, Timestamp)>,
    /// Where the last keys came from, to log a change once.
    origin: Option<String>,
}

/// How long before their expiry the instance role's keys are renewed.
const RENEW_BEFORE: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

impl Credentials {
    /// A chain on `settings`; nothing is read yet.
    pub fn new(settings: CredentialSettings) -> Credentials {
        Credentials {
            settings,
            instance_role: None,
            origin: None,
        }
    }

    /// The first keys the chain finds, or why none; a change of where they
    /// come from is logged (the key ID, never the secret).
    pub async fn keys(&mut self, http: &reqwest::Client, timeout: Duration) -> Result<Keys, String> {
        let keys = self.find(http, timeout).await?;
        if self.origin.as_ref() != Some(&keys.origin) {
            tracing::info!("AWS credentials {} from {}", keys.access_key_id, keys.origin);
            self.origin = Some(keys.origin.clone());
        }
        Ok(keys)
    }

    async fn find(&mut self, http: &reqwest::Client, timeout: Duration) -> Result<Keys, String> {
        if let Some((access_key_id, secret_access_key)) = &self.settings.configured {
            return Ok(Keys {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: None,
                origin: "the configuration".into(),
            });
        }
        if let Some(keys) = from_environment(|name| std::env::var(name).ok()) {
            return Ok(keys);
        }
        let profile = self
            .settings
            .profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|name| !name.is_empty()))
            .unwrap_or_else(|| "default".into());
        for (path, section) in shared_files(&profile) {
            if let Some(keys) = from_shared_file(&path, &section)? {
                return Ok(keys);
            }
        }
        let fresh = |expiry: &Timestamp| {
            Timestamp::now()
                .checked_add(RENEW_BEFORE)
                .is_ok_and(|soon| soon < *expiry)
        };
        if let Some((keys, expiry)) = &self.instance_role
            && fresh(expiry)
        {
            return Ok(keys.clone());
        }
        let endpoint = self
            .settings
            .imds_endpoint
            .clone()
            .or_else(|| {
                std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                    .ok()
                    .filter(|endpoint| !endpoint.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.to_owned());
        let (keys, expiry) = instance_role(http, &endpoint, timeout).await.map_err(|error| {
            format!(
                "no AWS credentials: none in the configuration, the environment or profile {profile:?} of the shared files, and the instance metadata service at {endpoint} gave none: {error}"
            )
        })?;
        self.instance_role = Some((keys.clone(), expiry));
        Ok(keys)
    }
}

/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`), when both are set.
fn from_environment(var: impl Fn(&str) -> Option<String>) -> Option<Keys> {
    let set = |name: &str| var(name).filter(|value| !value.is_empty());
    Some(Keys {
        access_key_id: set("AWS_ACCESS_KEY_ID")?,
        secret_access_key: set("AWS_SECRET_ACCESS_KEY")?,
        session_token: set("AWS_SESSION_TOKEN"),
        origin: "the environment".into(),
    })
}

/// The shared credentials file and the config file, each with the section
/// the profile has there.
fn shared_files(profile: &str) -> Vec<(PathBuf, String)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |variable: &str, default: &str| {
        std::env::var_os(variable)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws").join(default)))
    };
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    [
        (file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), profile.to_owned()),
        (file("AWS_CONFIG_FILE", "config"), config_section),
    ]
    .into_iter()
    .filter_map(|(path, section)| Some((path?, section)))
    .collect()
}

/// The keys of `section` in the INI file at `path`: `None` when the file or
/// the section does not exist or has no keys; an error naming the file and
/// line when it cannot be read or names only one of the two keys.
fn from_shared_file(path: &Path, section: &str) -> Result<Option<Keys>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{}: {error}", path.display())),
    };
    let mut ini = Ini::default();
    ini.read(path, &text).map_err(|error| error.to_string())?;
    let Some(own) = ini.section(section) else {
        return Ok(None);
    };
    let value = |key: &str| {
        own.entry(key)
            .map(|entry| (entry.value.trim().to_owned(), &entry.origin))
    };
    match (value("aws_access_key_id"), value("aws_secret_access_key")) {
        (Some((access_key_id, origin)), Some((secret_access_key, _))) => Ok(Some(Keys {
            access_key_id,
            secret_access_key,
            session_token: value("aws_session_token").map(|(token, _)| token),
            origin: format!("{origin} (profile section [{section}])"),
        })),
        (None, None) => Ok(None),
        (Some((_, origin)), None) => Err(format!(
            "{origin}: [{section}] has aws_access_key_id but no aws_secret_access_key"
        )),
        (None, Some((_, origin))) => Err(format!(
            "{origin}: [{section}] has aws_secret_access_key but no aws_access_key_id"
        )),
    }
}

#[derive(Deserialize)]
struct RoleCredentials {
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: String,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// The instance role's keys by IMDSv2: a session token from
/// `PUT /latest/api/token`, the role's name, then its keys.
async fn instance_role(http: &reqwest::Client, endpoint: &str, timeout: Duration) -> Result<(Keys, Timestamp), String> {
    let base = endpoint.trim_end_matches('/');
    let read = |response: Result<reqwest::Response, reqwest::Error>| async move {
        let response = response.map_err(|error| error.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|error| error.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("HTTP {status}: {}", haproxy::excerpt(text.trim())))
        }
    };
    let token = read(
        http.put(format!("{base}/latest/api/token"))
            .header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
            .timeout(timeout)
            .send()
            .await,
    )
    .await
    .map_err(|error| format!("IMDSv2 token: {error}"))?;
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .header("X-aws-ec2-metadata-token", token.trim())
            .timeout(timeout)
            .send()
    };
    let roles = read(get("/latest/meta-data/iam/security-credentials/".into()).await).await?;
    let role = roles
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .ok_or("the instance has no IAM role")?
        .to_owned();
    let body = read(get(format!("/latest/meta-data/iam/security-credentials/{role}")).await).await?;
    let answer: RoleCredentials =
        serde_json::from_str(&body).map_err(|error| format!("role {role:?}: not the credentials JSON: {error}"))?;
    let expiry: Timestamp = answer
        .expiration
        .parse()
        .map_err(|error| format!("role {role:?}: Expiration {:?}: {error}", answer.expiration))?;
    Ok((
        Keys {
            access_key_id: answer.access_key_id,
            secret_access_key: answer.secret_access_key,
            session_token: answer.token.filter(|token| !token.is_empty()),
            origin: format!("instance role {role}"),
        },
        expiry,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_needs_both_keys() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let keys = from_environment(vars(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ("AWS_SESSION_TOKEN", "TOKEN"),
        ]))
        .unwrap();
        assert_eq!(
            (
                keys.access_key_id.as_str(),
                keys.secret_access_key.as_str(),
                keys.session_token.as_deref()
            ),
            ("AKID", "SECRET", Some("TOKEN"))
        );
        assert_eq!(from_environment(vars(&[("AWS_ACCESS_KEY_ID", "AKID")])), None);
        assert_eq!(
            from_environment(vars(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "")])),
            None
        );
    }

    #[test]
    fn shared_files_are_read_by_profile_and_half_a_pair_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id = AKID1\naws_secret_access_key = S1\n\n[ops]\naws_access_key_id=AKID2\naws_secret_access_key=S2\naws_session_token=T2\n\n[half]\naws_access_key_id = AKID3\n",
        )
        .unwrap();
        let keys = from_shared_file(&path, "ops").unwrap().unwrap();
        assert_eq!(
            (
                keys.access_key_id.as_str(),
                keys.secret_access_key.as_str(),
                keys.session_token.as_deref()
            ),
            ("AKID2", "S2", Some("T2"))
        );
        assert_eq!(keys.origin, format!("{}:6 (profile section [ops])", path.display()));
        assert_eq!(
            from_shared_file(&path, "default").unwrap().unwrap().access_key_id,
            "AKID1"
        );
        assert_eq!(from_shared_file(&path, "nobody").unwrap(), None);
        assert_eq!(from_shared_file(&dir.path().join("absent"), "default").unwrap(), None);
        assert_eq!(
            from_shared_file(&path, "half").unwrap_err(),
            format!(
                "{}:11: [half] has aws_access_key_id but no aws_secret_access_key",
                path.display()
            )
        );
    }

    #[test]
    fn a_profile_is_its_own_section_in_the_config_file() {
        let sections: Vec<String> = shared_files("ops").into_iter().map(|(_, section)| section).collect();
        assert_eq!(sections, ["ops", "profile ops"]);
        let sections: Vec<String> = shared_files("default")
            .into_iter()
            .map(|(_, section)| section)
            .collect();
        assert_eq!(sections, ["default", "default"]);
    }
}
