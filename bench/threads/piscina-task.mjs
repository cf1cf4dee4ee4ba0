/** piscina's task of the benchmark: the same work as ./thread.ts, without validation. */
export default function task(input) {
  return input.buf === undefined ? input.a + input.b : input.buf.byteLength;
}
