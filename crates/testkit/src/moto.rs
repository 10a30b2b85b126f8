//! A real `moto_server` (PyPI `moto[server]` 5.2.5, `$MOTO_BIN`, else where
//! `scripts/moto.sh` installs it in the cache) on a loopback port, for the
//! backends tests' AWS Auto Scaling groups. The tests drive it with the
//! same raw Query API the controller uses (moto routes a request to a
//! service by the credential scope of its `Authorization` header and does
//! not check the signature). Dropping it stops the server.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The moto_server binary: `$MOTO_BIN`, else the cached one.
pub fn moto_binary() -> PathBuf {
    crate::cached_binary("MOTO_BIN", "moto-5.2.5/bin/moto_server")
}

/// An instance of a group as `DescribeAutoScalingGroups` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// `i-…`.
    pub id: String,
    /// `InService`, `Standby`, …
    pub lifecycle: String,
    /// `Healthy` or `Unhealthy`.
    pub health: String,
}

/// A running moto_server.
pub struct Moto {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Moto {
    /// Starts a server and waits until it answers.
    pub fn start() -> Moto {
        let dir = tempfile::Builder::new()
            .prefix("haproxide-moto-")
            .tempdir()
            .expect("temp dir");
        let port = crate::port_outside_ephemeral_range();
        let log = dir.path().join("moto.log");
        let child = crate::spawn_peer(
            Command::new(moto_binary()).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
            &log,
            "scripts/moto.sh",
        );
        let moto = Moto {
            dir,
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = moto.request("GET", "/moto-api/", None, "") {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(moto.dir.path().join("moto.log")).unwrap_or_default();
        panic!("moto_server did not answer within 30 s:\n{log}");
    }

    /// `http://127.0.0.1:PORT`: the endpoint of every service.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A Query-API call to `service` (`autoscaling`, `ec2`); the XML answer.
    pub fn call(&self, service: &str, version: &str, action: &str, parameters: &[(&str, &str)]) -> String {
        let mut body = format!("Action={action}&Version={version}");
        for (name, value) in parameters {
            body.push('&');
            body.push_str(name);
            body.push('=');
            body.push_str(&encode(value));
        }
        match self.request("POST", "/", Some(service), &body) {
            Ok((200, answer)) => answer,
            other => panic!("moto {action} {parameters:?}: {other:?}"),
        }
    }

    fn autoscaling(&self, action: &str, parameters: &[(&str, &str)]) -> String {
        self.call("autoscaling", "2011-01-01", action, parameters)
    }

    /// Creates group `name` of `desired` instances (0 to 20), with the
    /// launch configuration it needs.
    pub fn create_group(&self, name: &str, desired: u32) {
        let launch = format!("lc-{name}");
        self.autoscaling(
            "CreateLaunchConfiguration",
            &[
                ("LaunchConfigurationName", &launch),
                ("ImageId", "ami-12c6146b"),
                ("InstanceType", "t2.micro"),
            ],
        );
        self.autoscaling(
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", name),
                ("LaunchConfigurationName", &launch),
                ("MinSize", "0"),
                ("MaxSize", "20"),
                ("DesiredCapacity", &desired.to_string()),
                ("AvailabilityZones.member.1", "us-east-1a"),
            ],
        );
    }

    /// Scales group `name` to `desired` instances.
    pub fn set_desired_capacity(&self, name: &str, desired: u32) {
        self.autoscaling(
            "SetDesiredCapacity",
            &[
                ("AutoScalingGroupName", name),
                ("DesiredCapacity", &desired.to_string()),
            ],
        );
    }

    /// Puts instance `id` of group `name` in Standby (the group launches a replacement).
    pub fn enter_standby(&self, name: &str, id: &str) {
        self.autoscaling(
            "EnterStandby",
            &[
                ("AutoScalingGroupName", name),
                ("InstanceIds.member.1", id),
                ("ShouldDecrementDesiredCapacity", "false"),
            ],
        );
    }

    /// Marks instance `id` `Unhealthy`.
    pub fn set_unhealthy(&self, id: &str) {
        self.autoscaling(
            "SetInstanceHealth",
            &[("InstanceId", id), ("HealthStatus", "Unhealthy")],
        );
    }

    /// The instances of group `name`.
    pub fn members(&self, name: &str) -> Vec<GroupMember> {
        let answer = self.autoscaling("DescribeAutoScalingGroups", &[("AutoScalingGroupNames.member.1", name)]);
        let document = roxmltree::Document::parse(&answer).expect("moto's XML");
        document
            .descendants()
            .filter(|node| node.tag_name().name() == "Instances")
            .flat_map(|list| list.children().filter(|node| node.tag_name().name() == "member"))
            .map(|member| GroupMember {
                id: element_text(member, "InstanceId"),
                lifecycle: element_text(member, "LifecycleState"),
                health: element_text(member, "HealthStatus"),
            })
            .collect()
    }

    /// The private address of each instance of `ids`, sorted.
    pub fn private_addresses(&self, ids: &[String]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let names: Vec<String> = (1..=ids.len()).map(|index| format!("InstanceId.{index}")).collect();
        let parameters: Vec<(&str, &str)> = names
            .iter()
            .map(String::as_str)
            .zip(ids.iter().map(String::as_str))
            .collect();
        let answer = self.call("ec2", "2016-11-15", "DescribeInstances", &parameters);
        let document = roxmltree::Document::parse(&answer).expect("moto's XML");
        let mut addresses: Vec<String> = document
            .descendants()
            .filter(|node| node.tag_name().name() == "instancesSet")
            .flat_map(|set| set.children().filter(|node| node.tag_name().name() == "item"))
            .map(|instance| element_text(instance, "privateIpAddress"))
            .collect();
        addresses.sort();
        addresses
    }

    fn request(&self, method: &str, path: &str, service: Option<&str>, body: &str) -> std::io::Result<(u16, String)> {
        let headers = service
            .map(|service| {
                format!(
                    "Authorization: AWS4-HMAC-SHA256 Credential=test/20261204/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nX-Amz-Date: 20261204T000000Z\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                )
            })
            .unwrap_or_default();
        crate::http::loopback_request(self.port, method, path, &headers, body)
    }
}

fn element_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    node.children()
        .find(|child| child.tag_name().name() == name)
        .and_then(|child| child.text())
        .unwrap_or_default()
        .to_owned()
}

/// Form encoding of a value: unreserved characters as they are, the rest as `%XX`.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::process::stop_and_wait(child);
        }
    }
}
