/**
 * The queue per pipeline, for metrics scrapes: attempts queued (ready or delayed, not held by a paused run) and
 * the availability time of the oldest one that is ready. Reads the partial index of queued attempts
 * (attempts_queue) and each one's run by primary key. Parameters: $1 now (epoch ms).
 */
export const PG_QUEUE_STATS_SQL = `
SELECT r.pipeline AS pipeline, count(*)::int AS depth, min(a.available_at) FILTER (WHERE a.available_at <= $1) AS oldest_ready_at
FROM attempts a JOIN runs r ON r.id = a.run_id
WHERE a.status = 'queued'
GROUP BY r.pipeline`;
