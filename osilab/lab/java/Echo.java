package osilab.backend;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.WebSocketAdapter;
import org.eclipse.jetty.websocket.servlet.WebSocketServlet;
import org.eclipse.jetty.websocket.servlet.WebSocketServletFactory;

/**
 * RFC 6455 echo: every text or binary message comes back prefixed {@code echo:}.
 *
 * <p>Jetty answers the Upgrade with 101 and {@code Sec-WebSocket-Accept}, and accepts the
 * client's permessage-deflate offer (RFC 7692, one of Jetty's default extensions). One
 * log line per event names the request id, the app and the peer (nginx), in the Python
 * app's format ({@code ws event=open rid=... app=... peer=...}): truth.json reads them.
 */
final class Echo extends WebSocketAdapter {
    private final String where;
    private final String path;

    private Echo(String rid, String instance, String peer, String path) {
        this.where = "rid=" + rid + " app=" + instance + " peer=" + peer;
        this.path = path;
    }

    private static void log(String line) {
        System.out.println(line);
        System.out.flush();
    }

    @Override
    public void onWebSocketConnect(Session session) {
        super.onWebSocketConnect(session);
        boolean deflate = session.getUpgradeResponse().getExtensions().stream()
                .anyMatch(e -> e.getName().equals("permessage-deflate"));
        log("ws event=open " + where + " path=" + path + " deflate=" + (deflate ? "True" : "False"));
    }

    @Override
    public void onWebSocketText(String message) {
        log("ws event=message " + where + " kind=text bytes=" + message.getBytes(StandardCharsets.UTF_8).length);
        getRemote().sendStringByFuture("echo:" + message);
    }

    @Override
    public void onWebSocketBinary(byte[] payload, int offset, int length) {
        log("ws event=message " + where + " kind=binary bytes=" + length);
        ByteBuffer out = ByteBuffer.allocate(5 + length);
        out.put("echo:".getBytes(StandardCharsets.US_ASCII)).put(payload, offset, length).flip();
        getRemote().sendBytesByFuture(out);
    }

    @Override
    public void onWebSocketClose(int statusCode, String reason) {
        log("ws event=close " + where + " code=" + statusCode);
        super.onWebSocketClose(statusCode, reason);
    }

    /** The /ws/* servlet: makes one {@link Echo} per upgraded connection. */
    static final class Servlet extends WebSocketServlet {
        private final String instance;

        Servlet(String instance) {
            this.instance = instance;
        }

        @Override
        public void configure(WebSocketServletFactory factory) {
            factory.getPolicy().setIdleTimeout(3_600_000);  // no timeout of its own: the ALB's counts
            // Jetty's default limit is 64 KiB (a bigger message is closed with 1009, "too
            // big"); aiohttp's is 4 MiB, and the lab's client sends one of 65,552 bytes.
            factory.getPolicy().setMaxTextMessageSize(4 * 1024 * 1024);
            factory.getPolicy().setMaxBinaryMessageSize(4 * 1024 * 1024);
            factory.setCreator((request, response) -> new Echo(
                    Backend.requestId(request.getHeader("X-Request-Id"), request.getHttpServletRequest().getParameter("rid")),
                    instance,
                    request.getRemoteAddress() + ":" + request.getRemotePort(),
                    request.getRequestPath()));
        }
    }
}
