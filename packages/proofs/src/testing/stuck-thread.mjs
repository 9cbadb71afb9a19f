// A pool thread for the tests of a pool's deadlines and aborts: it never returns from verifying
// a proof of 0x00 or from proving a node of index 13 (it spins, as a bb.js call stuck in its wasm
// would: nothing but ending the thread stops it); a proof of 0x02 finds its proof system unable
// to run (answered as pool-task.ts answers it); any other verification answers true and any
// other proof is 0x01.
export default function runTask(task) {
  if (task.op === "verify" && task.proof.proof === "0x02") {
    return { proofSystemUnavailable: "bb.js did not start" };
  }
  const stuck =
    (task.op === "verify" && task.proof.proof === "0x00") ||
    (task.op === "prove" && task.node.index === 13);
  if (stuck) {
    // A shared cell nothing ever writes: an atomic read the optimizer cannot drop.
    const cell = new Int32Array(new SharedArrayBuffer(4));
    while (Atomics.load(cell, 0) === 0);
  }
  return task.op === "verify" ? true : { proof: "0x01", publicInputs: [] };
}
