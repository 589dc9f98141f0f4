package osilab.backend;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * The lab's backend service as the seed has it: Java, Spring and embedded Jetty 9.4.
 *
 * <p>Run inside an app namespace as {@code java -cp CLASSES:JARS osilab.backend.Backend
 * --listen 192.0.2.21:8080 --redis 192.0.2.30:6379 --database 192.0.2.40 --name api1}.
 * It serves the same routes as the Python app (osilab/lab/app.py) with the same JSON, so
 * the client, truth.json and the journey read both alike:
 *
 * <pre>
 *   GET         /api/items/N   cache-aside read ({@link Items})
 *   PUT, DELETE /api/items/N   drop item:N from the cache
 *   POST        /api/orders    count the body's bytes
 *   any         /api/...       echo the path
 *   GET         /ws/...        WebSocket echo ({@link Echo})
 * </pre>
 *
 * <p>What differs on the wire is the lesson: Jetty answers with {@code Server:
 * Jetty(9.4...)}, the pool keeps two long-lived PostgreSQL connections, and pgjdbc uses
 * the extended query protocol and, after five executions, a named prepared statement.
 *
 * <p>Every request carries an id ({@code X-Request-Id}, or the {@code rid} query
 * parameter), checked against {@code [A-Za-z0-9_-]{1,32}} before it goes anywhere: in the
 * Redis key {@code rid:<id>} and as the bound value {@code 'rid=<id>'} of the SQL.
 */
public final class Backend {
    static final Pattern RID = Pattern.compile("^[A-Za-z0-9_-]{1,32}$");
    static final Pattern ITEM = Pattern.compile("^/api/items/(\\d+)$");

    private Backend() {}

    /** The request's id from the header or the query; "-" when absent or unsafe. */
    static String requestId(String header, String query) {
        for (String candidate : new String[] {header, query}) {
            if (candidate != null && RID.matcher(candidate).matches()) return candidate;
        }
        return "-";
    }

    static String requestId(HttpServletRequest request) {
        return requestId(request.getHeader("X-Request-Id"), request.getParameter("rid"));
    }

    /** The /api routes: one servlet, a small dispatch on method and path. */
    static final class Api extends HttpServlet {
        private final Items items;
        private final String instance;

        Api(Items items, String instance) {
            this.items = items;
            this.instance = instance;
        }

        @Override
        protected void service(HttpServletRequest request, HttpServletResponse response) throws IOException {
            String rid = requestId(request);
            String method = request.getMethod();
            String path = request.getRequestURI();
            Matcher item = ITEM.matcher(path);
            String app = instance;
            if (item.matches() && (method.equals("GET") || method.equals("HEAD"))) {
                int id = Integer.parseInt(item.group(1));
                Items.Found found = items.get(id, rid);
                if (found.json == null) {
                    send(response, 404, Json.object("error", "no such item", "rid", rid));
                } else {
                    send(response, 200, Json.object("item", new Json.Raw(found.json),
                            "cache", found.source, "rid", rid, "app", app));
                }
            } else if (item.matches() && (method.equals("PUT") || method.equals("DELETE"))) {
                int id = Integer.parseInt(item.group(1));
                items.invalidate(id);
                send(response, 200, Json.object("invalidated", id, "rid", rid, "app", app));
            } else if (path.equals("/api/orders") && method.equals("POST")) {
                long size = 0;
                InputStream body = request.getInputStream();
                byte[] chunk = new byte[16384];
                for (int n = body.read(chunk); n >= 0; n = body.read(chunk)) size += n;
                send(response, 200, Json.object("received_bytes", size, "rid", rid, "app", app));
            } else {
                send(response, 200, Json.object("path", path, "rid", rid, "app", app));
            }
        }

        private static void send(HttpServletResponse response, int status, String json) throws IOException {
            byte[] body = json.getBytes(StandardCharsets.UTF_8);
            response.setStatus(status);
            response.setContentType("application/json; charset=utf-8");
            response.setContentLength(body.length);
            response.getOutputStream().write(body);
        }
    }

    static Map<String, String> arguments(String[] argv) {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) throw new IllegalArgumentException("expected --NAME VALUE: " + argv[i]);
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        for (String name : new String[] {"listen", "redis", "database"}) {
            if (!args.containsKey(name)) throw new IllegalArgumentException("missing --" + name);
        }
        args.putIfAbsent("name", "api");
        return args;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = arguments(argv);
        String listen = args.get("listen");
        int colon = listen.lastIndexOf(':');

        AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext();
        spring.getBeanFactory().registerSingleton("settings",
                new AppConfig.Settings(args.get("redis"), args.get("database"), args.get("name")));
        spring.register(AppConfig.class);
        spring.refresh();
        spring.registerShutdownHook();  // SIGTERM: close the pool (Terminate on the wire)

        Server jetty = new Server();
        ServerConnector connector = new ServerConnector(jetty);
        connector.setHost(listen.substring(0, colon));
        connector.setPort(Integer.parseInt(listen.substring(colon + 1)));
        jetty.addConnector(connector);
        ServletContextHandler context = new ServletContextHandler();
        context.setMaxFormContentSize(4 * 1024 * 1024);
        context.addServlet(new ServletHolder(new Api(spring.getBean(Items.class), args.get("name"))), "/api/*");
        context.addServlet(new ServletHolder(new Echo.Servlet(args.get("name"))), "/ws/*");
        jetty.setHandler(context);
        jetty.setStopAtShutdown(true);
        jetty.start();
        System.out.println("backend listening on " + listen + " (" + Server.getVersion() + ")");
        jetty.join();
    }
}
