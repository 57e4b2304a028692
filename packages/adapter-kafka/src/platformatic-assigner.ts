import type {
  ClusterMetadata,
  ExtendedGroupProtocolSubscription,
  GroupAssignment,
  GroupPartitionsAssignments,
} from '@platformatic/kafka';

/**
 * Round-robin per topic among the members subscribed to that topic (as kafkajs-assigner.ts does
 * for kafkajs). The library's own round-robin hands the leader's topics to every member, which
 * breaks when one PlugMQ group consumes different types in different `consume` calls.
 */
export function subscriptionAwareAssigner(
  _current: string,
  members: Map<string, ExtendedGroupProtocolSubscription>,
  _topics: Set<string>,
  metadata: ClusterMetadata,
): GroupPartitionsAssignments[] {
  const subscribers = new Map<string, string[]>();
  for (const [memberId, subscription] of members) {
    for (const topic of subscription.topics ?? []) {
      const list = subscribers.get(topic) ?? [];
      list.push(memberId);
      subscribers.set(topic, list);
    }
  }
  const assignments = new Map<string, Map<string, GroupAssignment>>();
  for (const memberId of members.keys()) assignments.set(memberId, new Map());
  // Start each topic at a different member so small topics do not all land on the first one.
  let offset = 0;
  for (const [topic, memberIds] of [...subscribers].sort(([a], [b]) => a.localeCompare(b))) {
    memberIds.sort();
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
    for (let partition = 0; partition < count; partition++) {
      const memberId = memberIds[(partition + offset) % memberIds.length]!;
      const topics = assignments.get(memberId)!;
      let entry = topics.get(topic);
      if (!entry) {
        entry = { topic, partitions: [] };
        topics.set(topic, entry);
      }
      entry.partitions.push(partition);
    }
    offset++;
  }
  return [...assignments].map(([memberId, topics]) => ({ memberId, assignments: topics }));
}
