//! AWS's Query API, the one Auto Scaling and EC2 share: a form-encoded
//! `POST /` with `Action` and `Version`, signed with Signature Version 4 by
//! the `aws-sigv4` crate, answered in XML. An error answer
//! (`<Error><Code>…</Code><Message>…</Message>`) becomes a message naming the
//! action and AWS's code.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use super::credentials::Keys;
use super::xml;
use crate::backends::sources::describe_http_error;

/// One service's endpoint and how requests to it are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The signing name (`autoscaling`, `ec2`).
    pub name: &'static str,
    /// The API version the actions are of.
    pub version: &'static str,
    /// Where requests go.
    pub endpoint: String,
    /// The signing region.
    pub region: String,
}

/// The endpoint `pattern` gives for `service` in `region`: `{service}` and
/// `{region}` replaced (`https://{service}.{region}.amazonaws.com`).
pub fn endpoint(pattern: &str, service: &str, region: &str) -> String {
    pattern.replace("{service}", service).replace("{region}", region)
}

/// The body's type: a form.
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// The headers SigV4 adds to a `POST /` of `body` at `time`:
/// `x-amz-date`, `authorization`, and `x-amz-security-token` with
/// temporary keys.
fn signed_headers(
    service: &Service,
    keys: &Keys,
    body: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        None,
        "haproxide",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&service.region)
        .name(service.name)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| format!("cannot sign: {error}"))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &service.endpoint,
        std::iter::once(("content-type", CONTENT_TYPE)),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|error| format!("cannot sign for {}: {error}", service.endpoint))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|error| format!("cannot sign: {error}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// Calls `action` with `parameters`; the XML answer, or what went wrong.
pub async fn call(
    http: &reqwest::Client,
    service: &Service,
    keys: &Keys,
    action: &str,
    parameters: &[(String, String)],
    timeout: Duration,
) -> Result<String, String> {
    let body = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action)
            .append_pair("Version", service.version);
        for (name, value) in parameters {
            form.append_pair(name, value);
        }
        form.finish()
    };
    let headers =
        signed_headers(service, keys, &body, SystemTime::now()).map_err(|error| format!("{action}: {error}"))?;
    let mut request = http
        .post(&service.endpoint)
        .header("content-type", CONTENT_TYPE)
        .timeout(timeout);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|error| format!("{action} at {}: {}", service.endpoint, describe_http_error(&error)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| format!("{action} at {}: {}", service.endpoint, describe_http_error(&error)))?;
    if status.is_success() {
        return Ok(text);
    }
    Err(match xml::error(&text) {
        Some((code, message)) => format!("{action}: {code}: {message} (HTTP {status})"),
        None => format!("{action}: HTTP {status}: {}", haproxy::excerpt(text.trim())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_those_botocore_makes() {
        // The expected headers were made by botocore 1.x's SigV4Auth (the
        // signer of the AWS CLI and boto3) for the same request and time.
        let service = Service {
            name: "autoscaling",
            version: "2011-01-01",
            endpoint: "https://autoscaling.eu-west-1.amazonaws.com".into(),
            region: "eu-west-1".into(),
        };
        let mut keys = Keys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            origin: "a test".into(),
        };
        let body =
            "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=web&MaxRecords=100";
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_385_600); // 2026-12-04T12:00:00Z
        let headers = |keys: &Keys| -> Vec<(String, String)> {
            let mut headers = signed_headers(&service, keys, body, time).unwrap();
            headers.sort();
            headers
        };
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(
            headers(&keys),
            [
                pair(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/eu-west-1/autoscaling/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0921f67c9042b4291dd36cad9a65ff1d57431c5d29bac73d50775d7f0d33899a"
                ),
                pair("x-amz-date", "20261204T120000Z"),
            ]
        );
        keys.session_token = Some("SESSIONTOKEN".into());
        assert_eq!(
            headers(&keys),
            [
                pair(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/eu-west-1/autoscaling/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=9883b69b6c0d146ffe006219d2f9f2b9a18109e0ffa4d429da5121387b108370"
                ),
                pair("x-amz-date", "20261204T120000Z"),
                pair("x-amz-security-token", "SESSIONTOKEN"),
            ]
        );
    }

    #[test]
    fn endpoints_are_made_from_the_pattern() {
        assert_eq!(
            endpoint("https://{service}.{region}.amazonaws.com", "autoscaling", "eu-west-1"),
            "https://autoscaling.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:5055", "ec2", "us-east-1"),
            "http://127.0.0.1:5055"
        );
    }
}
