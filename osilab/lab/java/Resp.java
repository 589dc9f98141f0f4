package osilab.backend;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * A Redis client in one page: RESP2, the Redis serialization protocol.
 *
 * <p>A command is an array of bulk strings: {@code *3\r\n$3\r\nGET\r\n$6\r\nitem:3\r\n}
 * ("*" and the count, then each argument as "$", its length, the bytes). A reply starts
 * with one byte that says its kind: {@code +} simple string ({@code +OK}), {@code -}
 * error, {@code :} integer, {@code $} bulk string ({@code $-1} is nil: the key is not in
 * the cache), {@code *} array. See https://redis.io/docs/latest/develop/reference/protocol-spec/
 *
 * <p>One TCP connection, kept for the life of the app (like redis-py's pool of one), used
 * by one request thread at a time ({@code synchronized}): a reply belongs to the command
 * before it, so two threads must never interleave on the socket. A broken connection is
 * opened again once.
 */
public final class Resp implements AutoCloseable {
    private final String host;
    private final int port;
    private Socket socket;
    private InputStream in;
    private OutputStream out;

    public Resp(String address) {
        int colon = address.lastIndexOf(':');
        this.host = address.substring(0, colon);
        this.port = Integer.parseInt(address.substring(colon + 1));
    }

    /** {@code GET key}: the value, or null when the reply is nil ({@code $-1}). */
    public String get(String key) throws IOException {
        return (String) call("GET", key);
    }

    /** {@code SET key value EX seconds}: the reply is {@code +OK}. */
    public void setex(String key, String value, int seconds) throws IOException {
        call("SET", key, value, "EX", Integer.toString(seconds));
    }

    /** {@code DEL key}: how many keys were removed (an integer reply). */
    public long del(String key) throws IOException {
        return (Long) call("DEL", key);
    }

    /** Send one command and read its one reply; reconnect once if the socket broke. */
    public synchronized Object call(String... args) throws IOException {
        try {
            return roundTrip(args);
        } catch (IOException broken) {
            close();
            return roundTrip(args);
        }
    }

    private Object roundTrip(String... args) throws IOException {
        if (socket == null) {
            socket = new Socket();
            socket.connect(new InetSocketAddress(host, port), 5000);
            socket.setSoTimeout(5000);
            socket.setTcpNoDelay(true);
            in = new BufferedInputStream(socket.getInputStream());
            out = socket.getOutputStream();
        }
        out.write(encode(args));  // one write: the whole command in one segment
        out.flush();
        return read();
    }

    /** The command as RESP: an array of bulk strings. */
    static byte[] encode(String... args) {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        ascii(buffer, "*" + args.length + "\r\n");
        for (String arg : args) {
            byte[] bytes = arg.getBytes(StandardCharsets.UTF_8);
            ascii(buffer, "$" + bytes.length + "\r\n");
            buffer.write(bytes, 0, bytes.length);
            ascii(buffer, "\r\n");
        }
        return buffer.toByteArray();
    }

    private static void ascii(ByteArrayOutputStream buffer, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.US_ASCII);
        buffer.write(bytes, 0, bytes.length);
    }

    /** One reply, by its first byte. */
    private Object read() throws IOException {
        int kind = in.read();
        String line = line();
        switch (kind) {
            case '+': return line;
            case '-': throw new IOException("redis error: " + line);
            case ':': return Long.parseLong(line);
            case '$': {
                int size = Integer.parseInt(line);
                if (size < 0) return null;  // $-1: nil
                byte[] data = new byte[size + 2];  // the value and its CRLF
                int got = 0;
                while (got < data.length) {
                    int n = in.read(data, got, data.length - got);
                    if (n < 0) throw new IOException("redis closed the connection in a reply");
                    got += n;
                }
                return new String(data, 0, size, StandardCharsets.UTF_8);
            }
            case '*': {
                int count = Integer.parseInt(line);
                if (count < 0) return null;
                Object[] items = new Object[count];
                for (int i = 0; i < count; i++) items[i] = read();
                return items;
            }
            case -1: throw new IOException("redis closed the connection");
            default: throw new IOException("not a RESP reply: first byte " + kind);
        }
    }

    private String line() throws IOException {
        StringBuilder text = new StringBuilder();
        for (int b = in.read(); b != '\r'; b = in.read()) {
            if (b < 0) throw new IOException("redis closed the connection in a reply");
            text.append((char) b);
        }
        in.read();  // the \n after \r
        return text.toString();
    }

    @Override
    public synchronized void close() {
        if (socket != null) {
            try { socket.close(); } catch (IOException ignored) { /* closing anyway */ }
        }
        socket = null;
    }
}
