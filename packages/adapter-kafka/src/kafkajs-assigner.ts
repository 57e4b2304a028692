import kafkajs, { type Assigner, type Cluster } from 'kafkajs';

const { AssignerProtocol } = kafkajs;

/**
 * Round-robin per topic among the members subscribed to that topic. kafkajs' own round-robin
 * assigner hands every topic of the group to every member, which breaks when one PlugMQ group
 * consumes different types in different `consume` calls (one Kafka group, different
 * subscriptions): a member would get partitions of a topic it does not read.
 */
export const subscriptionAwareAssigner = ({ cluster }: { cluster: Cluster }): Assigner => ({
  name: 'PlugmqRoundRobin',
  version: 1,
  async assign({ members }) {
    const subscribers = new Map<string, string[]>();
    for (const member of members) {
      const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
      for (const topic of metadata?.topics ?? []) {
        const list = subscribers.get(topic) ?? [];
        list.push(member.memberId);
        subscribers.set(topic, list);
      }
    }
    // The leader only knows the metadata of its own topics; fetch the others'.
    await (
      cluster as unknown as { addMultipleTargetTopics(topics: string[]): Promise<void> }
    ).addMultipleTargetTopics([...subscribers.keys()]);
    const assignment: Record<string, Record<string, number[]>> = {};
    for (const member of members) assignment[member.memberId] = {};
    // Start each topic at a different member so small topics do not all land on the first one.
    let offset = 0;
    for (const [topic, memberIds] of [...subscribers].sort(([a], [b]) => a.localeCompare(b))) {
      memberIds.sort();
      const partitions = cluster
        .findTopicPartitionMetadata(topic)
        .map((metadata) => metadata.partitionId)
        .sort((a, b) => a - b);
      partitions.forEach((partition, i) => {
        const memberId = memberIds[(i + offset) % memberIds.length]!;
        const topics = assignment[memberId]!;
        const list = topics[topic] ?? [];
        list.push(partition);
        topics[topic] = list;
      });
      offset++;
    }
    return members.map(({ memberId }) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: this.version,
        assignment: assignment[memberId] ?? {},
        userData: Buffer.alloc(0),
      }),
    }));
  },
  protocol({ topics }) {
    return {
      name: this.name,
      metadata: AssignerProtocol.MemberMetadata.encode({
        version: this.version,
        topics,
        userData: Buffer.alloc(0),
      }),
    };
  },
});
