//! The parts of Auto Scaling's and EC2's XML answers the source reads:
//! a group's instances with their lifecycle and health, an instance's
//! addresses and state, the pagination tokens, and an error's code and
//! message. Elements are matched by local name, so the namespace AWS puts
//! on the root (which differs between services and versions) does not
//! matter; what is not there is an error naming it.

use roxmltree::{Document, Node};

/// One instance as its Auto Scaling group lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    /// The group.
    pub group: String,
    /// `i-…`.
    pub id: String,
    /// `InService`, `Pending`, `Terminating:Wait`, `Standby`, …
    pub lifecycle: String,
    /// `Healthy` or `Unhealthy`.
    pub health: String,
}

/// One page of `DescribeAutoScalingGroups`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupsPage {
    /// The groups of this page, by name.
    pub groups: Vec<String>,
    /// Their instances.
    pub instances: Vec<GroupInstance>,
    /// The token of the next page.
    pub next: Option<String>,
}

/// One instance as `DescribeInstances` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    /// `i-…`.
    pub id: String,
    /// `pending`, `running`, `shutting-down`, …
    pub state: String,
    /// `privateIpAddress`.
    pub private_ip: Option<String>,
    /// `ipAddress`, the public one.
    pub public_ip: Option<String>,
}

/// One page of `DescribeInstances`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstancesPage {
    /// The instances of every reservation of this page.
    pub instances: Vec<Ec2Instance>,
    /// The token of the next page.
    pub next: Option<String>,
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children()
        .find(|child| child.is_element() && child.tag_name().name() == name)
}

fn children<'a, 'input>(node: Node<'a, 'input>, name: &'a str) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children()
        .filter(move |child| child.is_element() && child.tag_name().name() == name)
}

fn text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name)
        .and_then(|child| child.text())
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn required(node: Node<'_, '_>, name: &str, within: &str) -> Result<String, String> {
    text(node, name).ok_or_else(|| format!("{within} without {name}"))
}

fn parse<'input>(body: &'input str, action: &str) -> Result<Document<'input>, String> {
    Document::parse(body).map_err(|error| format!("{action}: the answer is not XML: {error}"))
}

/// Reads a `DescribeAutoScalingGroups` answer.
pub fn groups_page(body: &str) -> Result<GroupsPage, String> {
    const ACTION: &str = "DescribeAutoScalingGroups";
    let document = parse(body, ACTION)?;
    let result = child(document.root_element(), "DescribeAutoScalingGroupsResult")
        .ok_or_else(|| format!("{ACTION}: no DescribeAutoScalingGroupsResult in the answer"))?;
    let mut page = GroupsPage {
        next: text(result, "NextToken"),
        ..GroupsPage::default()
    };
    for group in child(result, "AutoScalingGroups")
        .into_iter()
        .flat_map(|list| children(list, "member"))
    {
        let name = required(group, "AutoScalingGroupName", &format!("{ACTION}: a group"))?;
        for instance in child(group, "Instances")
            .into_iter()
            .flat_map(|list| children(list, "member"))
        {
            let within = format!("{ACTION}: an instance of group {name:?}");
            page.instances.push(GroupInstance {
                group: name.clone(),
                id: required(instance, "InstanceId", &within)?,
                lifecycle: required(instance, "LifecycleState", &within)?,
                health: required(instance, "HealthStatus", &within)?,
            });
        }
        page.groups.push(name);
    }
    Ok(page)
}

/// Reads a `DescribeInstances` answer.
pub fn instances_page(body: &str) -> Result<InstancesPage, String> {
    const ACTION: &str = "DescribeInstances";
    let document = parse(body, ACTION)?;
    let root = document.root_element();
    let mut page = InstancesPage {
        next: text(root, "nextToken"),
        ..InstancesPage::default()
    };
    let reservations =
        child(root, "reservationSet").ok_or_else(|| format!("{ACTION}: no reservationSet in the answer"))?;
    for reservation in children(reservations, "item") {
        for instance in child(reservation, "instancesSet")
            .into_iter()
            .flat_map(|set| children(set, "item"))
        {
            let id = required(instance, "instanceId", &format!("{ACTION}: an instance"))?;
            let state = child(instance, "instanceState")
                .and_then(|state| text(state, "name"))
                .ok_or_else(|| format!("{ACTION}: instance {id} without instanceState"))?;
            page.instances.push(Ec2Instance {
                private_ip: text(instance, "privateIpAddress"),
                public_ip: text(instance, "ipAddress"),
                id,
                state,
            });
        }
    }
    Ok(page)
}

/// The `Code` and `Message` of an error answer (Auto Scaling's
/// `ErrorResponse/Error`, EC2's `Response/Errors/Error`).
pub fn error(body: &str) -> Option<(String, String)> {
    let document = Document::parse(body).ok()?;
    let error = document
        .descendants()
        .find(|node| node.is_element() && node.tag_name().name() == "Error")?;
    Some((text(error, "Code")?, text(error, "Message").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../fixtures/aws/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn moto_s_group_answer() {
        let page = groups_page(&fixture("moto-5.2.5_describe_auto_scaling_groups.xml")).unwrap();
        assert_eq!(page.groups, ["g1"]);
        assert_eq!(page.next, None);
        let states: Vec<(&str, &str, &str)> = page
            .instances
            .iter()
            .map(|instance| {
                (
                    instance.id.as_str(),
                    instance.lifecycle.as_str(),
                    instance.health.as_str(),
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ("i-3ab9cf7d9bf507d3e", "Standby", "Healthy"),
                ("i-1882818750e2d0ef7", "InService", "Unhealthy"),
                ("i-8b9df644332d4d80a", "InService", "Healthy"),
            ]
        );
    }

    #[test]
    fn the_documented_group_answer_with_pending_and_terminating_instances() {
        // The shape of AWS's API reference for DescribeAutoScalingGroups
        // (moto never puts an instance in Pending or Terminating).
        let body = r#"<DescribeAutoScalingGroupsResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <AutoScalingGroupName>my-asg</AutoScalingGroupName>
        <Instances>
          <member><InstanceId>i-0000000000000001a</InstanceId><LifecycleState>Pending</LifecycleState><HealthStatus>Healthy</HealthStatus></member>
          <member><InstanceId>i-0000000000000002b</InstanceId><LifecycleState>Terminating:Wait</LifecycleState><HealthStatus>Healthy</HealthStatus></member>
        </Instances>
      </member>
    </AutoScalingGroups>
    <NextToken>token-2</NextToken>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>8d798a29-f083-11e1-bdfb-cb223EXAMPLE</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#;
        let page = groups_page(body).unwrap();
        assert_eq!(page.next.as_deref(), Some("token-2"));
        let lifecycles: Vec<&str> = page
            .instances
            .iter()
            .map(|instance| instance.lifecycle.as_str())
            .collect();
        assert_eq!(lifecycles, ["Pending", "Terminating:Wait"]);
    }

    #[test]
    fn moto_s_instances_answer() {
        let page = instances_page(&fixture("moto-5.2.5_describe_instances.xml")).unwrap();
        assert_eq!(page.next, None);
        assert_eq!(
            page.instances[0],
            Ec2Instance {
                id: "i-1882818750e2d0ef7".into(),
                state: "running".into(),
                private_ip: Some("10.77.165.16".into()),
                public_ip: Some("54.214.195.51".into()),
            }
        );
        assert_eq!(page.instances.len(), 2);
        assert_eq!(
            instances_page(&fixture("moto-5.2.5_describe_instances_none.xml")).unwrap(),
            InstancesPage::default()
        );
    }

    #[test]
    fn errors_of_both_services() {
        assert_eq!(
            error(
                r#"<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Group x not found</Message></Error><RequestId>1</RequestId></ErrorResponse>"#
            ),
            Some(("ValidationError".into(), "Group x not found".into()))
        );
        assert_eq!(
            error(
                "<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>2</RequestID></Response>"
            ),
            Some((
                "AuthFailure".into(),
                "AWS was not able to validate the provided access credentials".into()
            ))
        );
        assert_eq!(error("<html>500</html>"), None);
    }

    #[test]
    fn what_is_missing_is_named() {
        assert_eq!(
            groups_page("<DescribeAutoScalingGroupsResponse/>").unwrap_err(),
            "DescribeAutoScalingGroups: no DescribeAutoScalingGroupsResult in the answer"
        );
        assert_eq!(
            groups_page("<R><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>g</AutoScalingGroupName><Instances><member><InstanceId>i-1</InstanceId><HealthStatus>Healthy</HealthStatus></member></Instances></member></AutoScalingGroups></DescribeAutoScalingGroupsResult></R>").unwrap_err(),
            "DescribeAutoScalingGroups: an instance of group \"g\" without LifecycleState"
        );
        assert!(
            instances_page("not xml")
                .unwrap_err()
                .starts_with("DescribeInstances: the answer is not XML: ")
        );
        assert_eq!(
            instances_page("<DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceId>i-1</instanceId></item></instancesSet></item></reservationSet></DescribeInstancesResponse>").unwrap_err(),
            "DescribeInstances: instance i-1 without instanceState"
        );
    }
}
