/**
 * Reading Prometheus's text format in tests, with parse-prometheus-text-format (never by string
 * matching): the families by name, and one sample's value by its exact label set.
 *
 * The parser folds a histogram's samples into one `buckets` object and drops the `_sum` and
 * `_count` of labelled series; a histogram is therefore read only where it has a single series.
 */
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';

/** The metric families of `text`, by name. Throws on text that does not parse. */
export function families(text: string): Map<string, ParsedFamily> {
  return new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
}

/** Every sample of family `name` as `{ labels, value }` (a number); [] if the family is absent. */
export function samples(
  parsed: Map<string, ParsedFamily>,
  name: string,
): { labels: Record<string, string>; value: number }[] {
  return (parsed.get(name)?.metrics ?? []).map((m) => ({
    labels: { ...m.labels },
    value: Number(m.value),
  }));
}

/**
 * The value of the sample of family `name` whose labels are exactly `labels`; undefined if there
 * is none.
 */
export function sampleValue(
  parsed: Map<string, ParsedFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  const hit = samples(parsed, name).find(
    (s) => JSON.stringify(Object.entries(s.labels).sort()) === want,
  );
  return hit?.value;
}
