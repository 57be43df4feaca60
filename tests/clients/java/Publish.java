// Publishes a JSONL log to border.events with Apache Kafka's Java client at its defaults
// (BuiltInPartitioner: murmur2 of the key; sticky batches for messages without one). Keys as
// every test producer has them: the line's checkpoint_id; a line without one (bad input) goes
// without a key. Usage: java Publish BOOTSTRAP LOG
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class Publish {
    // The checkpoint_id of a JSON object line (a line that is not one has none).
    private static final Pattern CHECKPOINT = Pattern.compile("^\\s*\\{.*\"checkpoint_id\"\\s*:\\s*\"([^\"\\\\]*)\"");

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.serializer", ByteArraySerializer.class.getName());
        props.put("value.serializer", ByteArraySerializer.class.getName());
        List<byte[]> lines = lines(Files.readAllBytes(Path.of(args[1])));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (byte[] line : lines) {
                // Latin-1 maps every byte to one char: the pattern sees the ASCII it looks for.
                Matcher m = CHECKPOINT.matcher(new String(line, StandardCharsets.ISO_8859_1));
                byte[] key = null;
                if (m.find()) {
                    key = m.group(1).getBytes(StandardCharsets.ISO_8859_1);
                }
                producer.send(new ProducerRecord<>("border.events", key, line));
            }
            producer.flush();
        }
        System.out.println("java: published " + lines.size() + " lines");
    }

    /** The log's lines as bytes, as they are (a line that is not UTF-8 is not repaired). */
    private static List<byte[]> lines(byte[] data) {
        List<byte[]> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= data.length; i++) {
            if (i == data.length || data[i] == '\n') {
                if (i > start || i < data.length) {
                    out.add(Arrays.copyOfRange(data, start, i));
                }
                start = i + 1;
            }
        }
        return out;
    }
}
