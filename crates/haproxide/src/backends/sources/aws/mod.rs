//! AWS Auto Scaling groups as a discovery source: every `poll-interval`,
//! `DescribeAutoScalingGroups` for the configured groups and
//! `DescribeInstances` for their instances, both followed page by page,
//! keep the instances that are `InService` and `Healthy` in their group
//! (EP2 took `Pending` and `Terminating` ones too) and `running` in EC2, at
//! their private or public address (`aws-ip-type`).
//!
//! A group scaled to zero is published as an empty list, which the
//! controller applies only when `min-servers = 0` allows it (EP2 read zero
//! as an error and never removed the last servers). A group that does not
//! exist, an error answer or a request that fails keeps the last list and
//! is said once, with AWS's code and message.
//!
//! The client is small on purpose: the Query API over the controller's
//! reqwest, signed by `aws-sigv4` ([`query_api`]), the XML read with
//! `roxmltree` ([`xml`]), credentials found as the SDKs find them
//! ([`credentials`]).

pub mod credentials;
pub mod query_api;
pub mod xml;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use self::credentials::{CredentialSettings, Credentials};
use self::query_api::Service;
use super::{Found, Health, Published, Source, publish_if_changed};

/// `DescribeAutoScalingGroups` pages are at most this long (AWS's maximum).
const GROUPS_PER_PAGE: usize = 100;
/// Instance IDs per `DescribeInstances` filter (AWS takes up to 200 values).
const IDS_PER_REQUEST: usize = 200;
/// `DescribeInstances` pages are at most this long (AWS's maximum).
const INSTANCES_PER_PAGE: usize = 1000;

/// Which address of an instance HAProxy gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpType {
    /// `privateIpAddress`.
    Private,
    /// `ipAddress`.
    Public,
}

/// What to ask AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsQuery {
    /// The Auto Scaling groups.
    pub groups: Vec<String>,
    /// Their region.
    pub region: String,
    /// The endpoint pattern (`{service}`, `{region}` replaced).
    pub endpoint: String,
    /// Private or public addresses.
    pub ip_type: IpType,
    /// Where the credentials come from.
    pub credentials: CredentialSettings,
    /// Seconds between polls.
    pub poll_interval: Duration,
    /// Bound on one request.
    pub timeout: Duration,
}

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// The servers.
    pub found: Vec<Found>,
    /// In-service instances that could not be servers, and why.
    pub skipped: Vec<String>,
}

/// The source.
#[derive(Debug)]
pub struct AwsSource {
    query: AwsQuery,
    http: reqwest::Client,
    autoscaling: Service,
    ec2: Service,
}

impl AwsSource {
    /// A source asking `query` (builds the HTTP client, sends nothing).
    pub fn new(query: AwsQuery) -> anyhow::Result<AwsSource> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let service = |name: &'static str, version: &'static str| Service {
            name,
            version,
            endpoint: query_api::endpoint(&query.endpoint, name, &query.region),
            region: query.region.clone(),
        };
        Ok(AwsSource {
            autoscaling: service("autoscaling", "2011-01-01"),
            ec2: service("ec2", "2016-11-15"),
            http,
            query,
        })
    }

    /// One poll.
    pub async fn fetch(&self, credentials: &mut Credentials) -> Result<Listing, String> {
        let keys = credentials.keys(&self.http, self.query.timeout).await?;
        let call = |service: &Service, action: &'static str, parameters: Vec<(String, String)>| {
            let keys = keys.clone();
            let service = service.clone();
            async move { query_api::call(&self.http, &service, &keys, action, &parameters, self.query.timeout).await }
        };

        let mut named: Vec<(String, String)> = self
            .query
            .groups
            .iter()
            .enumerate()
            .map(|(index, group)| (format!("AutoScalingGroupNames.member.{}", index + 1), group.clone()))
            .collect();
        named.push(("MaxRecords".into(), GROUPS_PER_PAGE.to_string()));
        let mut seen_groups = Vec::new();
        let mut members = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut parameters = named.clone();
            parameters.extend(token.take().map(|token| ("NextToken".to_owned(), token)));
            let page = xml::groups_page(&call(&self.autoscaling, "DescribeAutoScalingGroups", parameters).await?)?;
            seen_groups.extend(page.groups);
            members.extend(page.instances);
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        let missing: Vec<&str> = self
            .query
            .groups
            .iter()
            .filter(|group| !seen_groups.contains(group))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "Auto Scaling group(s) {} not found in {}",
                missing.join(", "),
                self.query.region
            ));
        }
        let serving: Vec<&xml::GroupInstance> = members
            .iter()
            .filter(|member| member.lifecycle == "InService" && member.health == "Healthy")
            .collect();

        let mut described: HashMap<String, xml::Ec2Instance> = HashMap::new();
        for chunk in serving.chunks(IDS_PER_REQUEST) {
            let mut filter = vec![("Filter.1.Name".to_owned(), "instance-id".to_owned())];
            filter.extend(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(index, member)| (format!("Filter.1.Value.{}", index + 1), member.id.clone())),
            );
            filter.push(("MaxResults".into(), INSTANCES_PER_PAGE.to_string()));
            loop {
                let mut parameters = filter.clone();
                parameters.extend(token.take().map(|token| ("NextToken".to_owned(), token)));
                let page = xml::instances_page(&call(&self.ec2, "DescribeInstances", parameters).await?)?;
                described.extend(
                    page.instances
                        .into_iter()
                        .map(|instance| (instance.id.clone(), instance)),
                );
                match page.next {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
        }
        Ok(listing(&serving, &described, self.query.ip_type))
    }
}

/// The servers among `serving`, as EC2 `described` them.
fn listing(serving: &[&xml::GroupInstance], described: &HashMap<String, xml::Ec2Instance>, ip_type: IpType) -> Listing {
    let mut listing = Listing::default();
    for member in serving {
        let name = format!("{} (group {})", member.id, member.group);
        let Some(instance) = described.get(&member.id) else {
            listing
                .skipped
                .push(format!("{name}: not in DescribeInstances' answer"));
            continue;
        };
        if instance.state != "running" {
            listing.skipped.push(format!("{name}: {}", instance.state));
            continue;
        }
        let (address, kind) = match ip_type {
            IpType::Private => (&instance.private_ip, "private"),
            IpType::Public => (&instance.public_ip, "public"),
        };
        match address.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(address)) => listing.found.push(Found {
                address,
                port: None,
                weight: None,
            }),
            Some(Err(_)) => listing
                .skipped
                .push(format!("{name}: {kind} address {:?} is not an IP address", address)),
            None => listing.skipped.push(format!("{name}: no {kind} IP address")),
        }
    }
    listing
}

impl Source for AwsSource {
    fn describe(&self) -> String {
        format!(
            "aws {} auto scaling group(s) {}",
            self.query.region,
            self.query.groups.join(", ")
        )
    }

    fn run(self: Box<Self>, publish: Published) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut credentials = Credentials::new(self.query.credentials.clone());
            let mut health = Health::default();
            let mut skipped = Vec::new();
            while !publish.is_closed() {
                let started = tokio::time::Instant::now();
                match self.fetch(&mut credentials).await {
                    Ok(listing) => {
                        health.answered(&self.describe());
                        if listing.skipped != skipped {
                            for reason in &listing.skipped {
                                tracing::warn!("{}: not a server: {reason}", self.describe());
                            }
                            skipped = listing.skipped;
                        }
                        if publish_if_changed(&publish, listing.found) {
                            tracing::debug!("{}: new list", self.describe());
                        }
                        tokio::time::sleep_until(started + self.query.poll_interval).await;
                    }
                    Err(error) => {
                        let pause = health.failed(&self.describe(), error);
                        tokio::time::sleep(pause.max(self.query.poll_interval)).await;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> xml::GroupInstance {
        xml::GroupInstance {
            group: "web".into(),
            id: id.into(),
            lifecycle: "InService".into(),
            health: "Healthy".into(),
        }
    }

    fn instance(
        id: &str,
        state: &str,
        private_ip: Option<&str>,
        public_ip: Option<&str>,
    ) -> (String, xml::Ec2Instance) {
        (
            id.to_owned(),
            xml::Ec2Instance {
                id: id.into(),
                state: state.into(),
                private_ip: private_ip.map(str::to_owned),
                public_ip: public_ip.map(str::to_owned),
            },
        )
    }

    #[test]
    fn servers_are_running_instances_with_the_chosen_address() {
        let members = [member("i-1"), member("i-2"), member("i-3"), member("i-4")];
        let serving: Vec<&xml::GroupInstance> = members.iter().collect();
        let described: HashMap<String, xml::Ec2Instance> = [
            instance("i-1", "running", Some("10.0.0.1"), Some("54.0.0.1")),
            instance("i-2", "pending", Some("10.0.0.2"), None),
            instance("i-3", "running", Some("10.0.0.3"), None),
        ]
        .into_iter()
        .collect();
        let private = listing(&serving, &described, IpType::Private);
        let addresses: Vec<String> = private.found.iter().map(|found| found.address.to_string()).collect();
        assert_eq!(addresses, ["10.0.0.1", "10.0.0.3"]);
        assert_eq!(
            private.skipped,
            [
                "i-2 (group web): pending",
                "i-4 (group web): not in DescribeInstances' answer"
            ]
        );
        let public = listing(&serving, &described, IpType::Public);
        let addresses: Vec<String> = public.found.iter().map(|found| found.address.to_string()).collect();
        assert_eq!(addresses, ["54.0.0.1"]);
        assert_eq!(
            public.skipped,
            [
                "i-2 (group web): pending",
                "i-3 (group web): no public IP address",
                "i-4 (group web): not in DescribeInstances' answer"
            ]
        );
    }
}
