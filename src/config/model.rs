//! The raw `cluster.yaml` model: exactly what the file says, as serde reads it.
//!
//! Nothing here is validated beyond its shape; [`super::validate`] turns it into the resolved
//! [`super::Cluster`] the program runs on. The JSON Schema (`homelab schema`) is generated from
//! these types, so doc comments become editor hints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A homelab cluster: the machines MAAS installs, the Kubernetes cluster on them, Rook/Ceph
/// storage and a Strimzi Kafka cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "homelab cluster.yaml")]
pub struct ClusterFile {
    /// Always `homelab/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `Cluster`.
    pub kind: Kind,
    pub metadata: Metadata,
    /// Canonical MAAS, which installs Ubuntu on the machines (needed for `distribution: microk8s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maas: Option<MaasSpec>,
    /// How homelab logs in to the machines once MAAS has deployed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSpec>,
    /// Default disk layout for every machine; a machine's own `storage` overrides fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// The PCs, found in MAAS by MAC address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<MachineSpec>,
    pub kubernetes: KubernetesSpec,
    /// Rook/Ceph block storage on the machines' Ceph volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rook: Option<RookSpec>,
    /// Strimzi and one Kafka cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSpec>,
    /// A shared PostgreSQL cluster run by CloudNativePG on the cluster's block storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSpec>,
    /// Deadlines of the waits (e.g. `30m`, `90s`); raise them for slow old PCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum ApiVersion {
    #[serde(rename = "homelab/v1alpha1")]
    V1Alpha1,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum Kind {
    Cluster,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Cluster name: a lowercase RFC 1123 label. The kubeconfig context is `homelab-<name>`.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaasSpec {
    /// MAAS URL, e.g. `http://10.0.0.1:5240/MAAS`; the API is `<url>/api/2.0/`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// File holding the MAAS API key (`consumer:token:secret`). Without it homelab reads
    /// `$MAAS_API_KEY`. The key itself is never written in this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// PEM file with the certificate authority of an https MAAS whose certificate is
    /// self-signed (`maas config-tls enable`); added to the system's trusted roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Ubuntu series to deploy (default `jammy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro_series: Option<String>,
}

pub use crate::ssh::HostKeyChecking;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshSpec {
    /// Login user (default `ubuntu`, the user MAAS's Ubuntu images create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key; its `.pub` file is registered in MAAS before deploying (default
    /// `~/.ssh/id_ed25519`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_checking: Option<HostKeyChecking>,
    /// known_hosts file homelab records host keys in (default: its own file in the state
    /// directory, so your `~/.ssh/known_hosts` is not touched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts_file: Option<String>,
    /// Jump host (`user@host:port`), as `ssh -J`. It is checked with the same known_hosts
    /// file and host-key policy as the machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([A-Za-z0-9._-]+@)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$"))]
    pub jump_host: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// LVM root volume of `rootSize` plus an unformatted logical volume for Ceph.
    Lvm,
    /// Leave the disk layout MAAS has; no Ceph volume on this machine.
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// Size of the OS logical volume: bytes or an SI size as MAAS counts (`100G` = 100·10⁹
    /// bytes); `Gi`/`Ti` are accepted too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?\s*([KMGTP]i?)?B?$"))]
    pub root_size: Option<String>,
    /// The Ceph logical volume: `rest` (all space left in the volume group), a size, or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(rest|none|[0-9]+(\.[0-9]+)?\s*([KMGTP]i?)?B?)$"))]
    pub ceph: Option<String>,
    /// An existing blank device for Ceph instead of a logical volume MAAS makes: a whole disk
    /// (`/dev/sdb`), a blank partition or a blank logical volume. For a pre-installed machine
    /// or a node of an existing cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/dev/"))]
    pub device: Option<String>,
    /// For a pre-installed machine: the volume group homelab carves the Ceph logical volume
    /// `ceph` from (`ubuntu-vg` on an Ubuntu server install), of size `ceph` (`rest` or a
    /// size). Only free extents are used; no existing volume is shrunk, moved or touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$"))]
    pub volume_group: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the Kubernetes control plane and the dqlite datastore (odd count: 1, 3, 5).
    #[default]
    ControlPlane,
    /// Runs workloads only (`microk8s join --worker`).
    Worker,
}

impl Role {
    /// The role as cluster.yaml writes it.
    pub fn name(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachineSpec {
    /// Lowercase RFC 1123 label; it becomes the Kubernetes node name.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub hostname: String,
    /// MAC address of the PC's boot interface, as MAAS knows it: MAAS deploys this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$"))]
    pub mac: Option<String>,
    /// IP address or DNS name of a machine that is already installed (Ubuntu, reached by
    /// SSH), such as the MAAS host itself: homelab never touches it through MAAS. Give
    /// either `mac` or `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9A-Za-z.:\[\]-]+$"))]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Overrides of the cluster-wide `storage` for this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// MicroK8s installed by homelab on the MAAS machines.
    Microk8s,
    /// A cluster that already exists (kind, a managed cloud cluster): no MAAS or MicroK8s phase.
    Existing,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesSpec {
    pub distribution: Distribution,
    /// MicroK8s snap channel with a pinned track, e.g. `1.26/stable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// MicroK8s add-ons enabled once on the first control-plane node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addons: Option<Vec<String>>,
    /// Kubeconfig of an existing cluster (default `~/.kube/config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Context inside that kubeconfig (default: its current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RookSpec {
    /// A Rook release from the catalog (`v1.10.10`, `v1.20.6`).
    pub version: String,
    /// The Ceph image, a build the catalog pins (default: the Rook release's own default,
    /// e.g. `quay.io/ceph/ceph:v17.2.5` for v1.10.10). `homelab upgrade` moves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceph_image: Option<String>,
    #[serde(default)]
    pub pools: Vec<PoolSpec>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailureDomain {
    /// Replicas on different machines.
    #[default]
    Host,
    /// Replicas on different OSDs (may share a machine).
    Osd,
}

impl FailureDomain {
    /// The name Rook's `failureDomain` takes.
    pub fn name(self) -> &'static str {
        match self {
            FailureDomain::Host => "host",
            FailureDomain::Osd => "osd",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSpec {
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domain: Option<FailureDomain>,
    /// Copies of each object; at most the number of machines with a Ceph volume.
    #[schemars(range(min = 1, max = 7))]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClassSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageClassSpec {
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"))]
    pub name: String,
    /// Mark it the cluster's default StorageClass.
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSpec {
    /// A Strimzi release from the catalog (`0.33.1`, `0.45.2`, `1.2.0`).
    pub strimzi_version: String,
    /// Namespace of the operator and the Kafka cluster (default `kafka`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub namespace: Option<String>,
    pub cluster: KafkaClusterSpec,
    /// Topics (KafkaTopic resources) the applications use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<TopicSpec>,
    /// Users (KafkaUser resources): credentials in a Secret, ACLs, quotas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserSpec>,
    /// The HTTP bridge (KafkaBridge) and the NodePort that exposes it on the LAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicSpec {
    /// The KafkaTopic's name, and the topic's unless `topicName` is given.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// The topic's name in Kafka when it is not a valid Kubernetes name (cannot change later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,249}$"))]
    pub topic_name: Option<String>,
    /// Partitions (default: the brokers' `num.partitions`); can grow, never shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub partitions: Option<u32>,
    /// Replicas of each partition (default: `default.replication.factor`); cannot change later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<u32>,
    /// Topic configuration passed through (`retention.ms`, `cleanup.policy`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum UserAuthentication {
    /// A password (SCRAM-SHA-512) the User Operator generates.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// A client certificate (mutual TLS) signed by the clients CA.
    #[serde(rename = "tls")]
    Tls,
}

impl UserAuthentication {
    pub fn as_str(self) -> &'static str {
        match self {
            UserAuthentication::ScramSha512 => "scram-sha-512",
            UserAuthentication::Tls => "tls",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    /// The KafkaUser's name: the SCRAM user name, the certificate's `CN` (at most 64 for TLS).
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"))]
    pub name: String,
    pub authentication: UserAuthentication,
    /// The listener this user connects through; homelab turns its authentication on
    /// (default: the first TLS listener for `tls`, the first listener for `scram-sha-512`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    /// ACLs (simple authorization: homelab turns `authorization: simple` on for the Kafka).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<AclSpec>,
    /// Quotas passed through (`producerByteRate`, `consumerByteRate`, `requestPercentage`,
    /// `controllerMutationRate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclSpec {
    pub resource: AclResource,
    #[schemars(length(min = 1))]
    pub operations: Vec<AclOperation>,
    /// `allow` (default) or `deny`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<AclType>,
    /// The client host the rule applies to (default `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclResource {
    #[serde(rename = "type")]
    pub kind: AclResourceType,
    /// The topic, group or transactional id (not for `cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `literal` (default) or `prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<PatternType>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum AclResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PatternType {
    Literal,
    Prefix,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AclType {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum AclOperation {
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    AlterConfigs,
    DescribeConfigs,
    IdempotentWrite,
    All,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_byte_rate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_byte_rate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub request_percentage: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_mutation_rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BridgeSpec {
    /// The KafkaBridge's name (default `bridge`; its Deployment is `<name>-bridge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$"))]
    pub name: Option<String>,
    /// Bridge pods (default 1; consumers live in one pod's memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// HTTP port (default 8080).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1023, max = 65535))]
    pub port: Option<u16>,
    /// The `scram-sha-512` or `tls` user (from `kafka.users`) it authenticates as; without it
    /// the bridge uses a listener without authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Expose it on every node's address: `{nodePort: 30080}` (a homelab-owned NodePort
    /// Service; Strimzi creates only a ClusterIP one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expose {
    /// The node port (30000–32767).
    #[schemars(range(min = 30000, max = 32767))]
    pub node_port: u16,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetadataMode {
    /// ZooKeeper ensemble (Strimzi up to 0.45).
    Zookeeper,
    /// KRaft controllers in KafkaNodePools (required from Strimzi 0.46).
    Kraft,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaClusterSpec {
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// Kafka version (default: the Strimzi release's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Number of brokers.
    #[schemars(range(min = 1))]
    pub replicas: u32,
    /// `zookeeper` or `kraft` (default: what the Strimzi release supports, KRaft when both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataMode>,
    pub storage: KafkaStorage,
    /// Listeners in Strimzi's own syntax (default: plain 9092 and tls 9093, internal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Vec<Listener>>,
    /// Broker configuration passed through to Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Map<String, Value>>,
    /// ZooKeeper ensemble (`metadata: zookeeper`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<EnsembleSpec>,
    /// Dedicated KRaft controllers (`metadata: kraft`); without it the brokers are also
    /// controllers (dual-role node pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<EnsembleSpec>,
    /// Name of the brokers' KafkaNodePool with dedicated `controllers` (default `broker`).
    /// A cluster migrated from ZooKeeper keeps its brokers in the pool `kafka`, whose
    /// storage is the single claim the ZooKeeper-mode brokers had: pod and PVC names stay
    /// (`homelab upgrade` says when to set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub broker_pool: Option<String>,
    /// Strimzi entity operator, passed through (default: topic and user operators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_operator: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnsembleSpec {
    #[schemars(range(min = 1))]
    pub replicas: u32,
    pub storage: KafkaStorage,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaStorage {
    /// Kubernetes quantity, e.g. `100Gi`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: String,
    /// StorageClass (default: the Rook pool marked default, else the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Delete the PVCs when the Kafka cluster is deleted.
    #[serde(default)]
    pub delete_claim: bool,
}

/// A Strimzi listener (`name`, `port`, `type`, `tls` plus any of Strimzi's listener fields).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    #[schemars(regex(pattern = r"^[a-z0-9]{1,11}$"))]
    pub name: String,
    #[schemars(range(min = 9092))]
    pub port: u32,
    #[serde(rename = "type")]
    pub kind: ListenerType,
    pub tls: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerType {
    Internal,
    Route,
    Loadbalancer,
    Nodeport,
    Ingress,
    Cluster,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// MAAS commissioning (default `30m`, MAAS's own limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission: Option<String>,
    /// MAAS deployment (default `30m`, MAAS's own limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<String>,
    /// SSH reachable and cloud-init done after deploy (default `15m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    /// `snap install microk8s` and `microk8s status --wait-ready` (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microk8s: Option<String>,
    /// One `microk8s join` until the node is Ready (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// Operators Available and CRDs Established (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// CephCluster healthy with one OSD per machine (default `30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceph: Option<String>,
    /// Kafka Ready (default `20m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<String>,
    /// The PostgreSQL cluster healthy with every instance ready (default `15m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// The `database` section: one PostgreSQL cluster (a CloudNativePG `Cluster`). The
/// CloudNativePG release follows the cluster's Kubernetes version (the catalog).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseSpec {
    /// The Cluster's name: pods `<name>-1`, `<name>-2`, …; Services `<name>-rw` (the
    /// primary), `-ro`, `-r`; the application's credentials in Secret `<name>-app`.
    #[schemars(regex(pattern = r"^[a-z]([-a-z0-9]{0,48}[a-z0-9])?$"))]
    pub name: String,
    /// Namespace (default `databases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// PostgreSQL instances: one primary, the rest streaming replicas (default 1; 3 survive
    /// the loss of a PC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub instances: Option<u32>,
    /// Each instance's data volume; it can grow, never shrink.
    pub storage: DatabaseVolume,
    /// A separate volume for the write-ahead log; once set it cannot be removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_storage: Option<DatabaseVolume>,
    /// The database created at bootstrap (default `app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub database: Option<String>,
    /// Its owner, the application's role (default: the database's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub owner: Option<String>,
    /// PostgreSQL parameters (`max_connections: 200`, `shared_buffers: 512MB`); values are
    /// passed as strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// The PostgreSQL image, pinned by tag or digest (default: the one the catalog pins for
    /// the CloudNativePG release, else the operator's own default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Expose the primary (`-rw`) on every node's address: `{nodePort: 30432}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseVolume {
    /// Kubernetes quantity, e.g. `20Gi`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: String,
    /// StorageClass (default: the Rook pool marked default, else the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}
