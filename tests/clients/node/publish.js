// Publishes a JSONL log to border.events with kafkajs at its defaults (DefaultPartitioner:
// Java-compatible murmur2 of the key; round-robin without one). Keys as every test producer has
// them: the line's checkpoint_id; a line without one (bad input) goes without a key.
// Usage: node publish.js BOOTSTRAP LOG
"use strict";
process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";
const fs = require("fs");
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, path] = process.argv.slice(2);
  // Lines as bytes: a line that is not UTF-8 is published as it is, not repaired.
  const data = fs.readFileSync(path);
  const lines = [];
  for (let start = 0; start < data.length; ) {
    let end = data.indexOf(0x0a, start);
    if (end < 0) end = data.length;
    lines.push(data.subarray(start, end));
    start = end + 1;
  }
  const messages = lines.map((value) => {
    let checkpoint = null;
    try {
      const event = JSON.parse(value.toString("utf8"));
      if (event && typeof event === "object" && !Array.isArray(event) && typeof event.checkpoint_id === "string") {
        checkpoint = event.checkpoint_id;
      }
    } catch (_) {
      // not JSON: published as it is, without a key
    }
    return { key: checkpoint, value };
  });
  const kafka = new Kafka({ clientId: "node-checkpoint", brokers: bootstrap.split(","), logLevel: logLevel.ERROR });
  const producer = kafka.producer();
  await producer.connect();
  for (let start = 0; start < messages.length; start += 500) {
    await producer.send({ topic: "border.events", messages: messages.slice(start, start + 500) });
  }
  await producer.disconnect();
  console.log(`kafkajs: published ${lines.length} lines`);
}

main().catch((error) => {
  console.error(`kafkajs: ${error.message}`);
  process.exit(1);
});
