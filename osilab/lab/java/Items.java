package osilab.backend;

import java.io.IOException;
import java.util.List;

import org.springframework.jdbc.core.JdbcTemplate;

/**
 * The items the API serves, read through the cache into the database: cache-aside.
 *
 * <p>Look in Redis ({@code GET item:N}); on a miss ({@code $-1}) read PostgreSQL and fill
 * the cache ({@code SET item:N ... EX 300}). So the first request for an item shows GET,
 * nil, the SQL and SET on the wire; the next one only a GET that hits. Every request
 * first sets {@code rid:<id>} (the request id, visible on the Redis hop), as the Python
 * app does.
 *
 * <p>The SQL text never changes: the request id travels as a bound value
 * ({@code 'rid=a0005'}), not in a comment. pgjdbc counts the executions of each SQL text
 * on a connection, and after {@code prepareThreshold} (5) of them it stops sending an
 * unnamed Parse per query: it Parses the statement once under a name ({@code S_1}) and
 * from then on sends only Bind and Execute. A request id inside the SQL text would make
 * every text new, and the switch would never come (the statement cache is keyed by text).
 */
public final class Items {
    /** The one query. {@code ?} are JDBC placeholders; pgjdbc sends them as $1, $2. */
    static final String SQL = "SELECT id, name, price, ? AS request FROM items WHERE id = ?";
    static final int TTL = 300;

    private final JdbcTemplate jdbc;
    private final Resp cache;

    public Items(JdbcTemplate jdbc, Resp cache) {
        this.jdbc = jdbc;
        this.cache = cache;
    }

    /** An item as JSON plus where it came from ("hit" or "miss"); null item: no such row. */
    public static final class Found {
        public final String json;
        public final String source;

        Found(String json, String source) {
            this.json = json;
            this.source = source;
        }
    }

    public Found get(int id, String rid) throws IOException {
        cache.setex("rid:" + rid, "item:" + id, TTL);
        String cached = cache.get("item:" + id);
        if (cached != null) {
            return new Found(cached, "hit");
        }
        List<String> rows = jdbc.query(SQL, (row, n) -> Json.object(
                "id", row.getInt("id"), "name", row.getString("name"), "price", row.getString("price")),
                "rid=" + rid, id);
        if (rows.isEmpty()) {
            return new Found(null, "miss");
        }
        cache.setex("item:" + id, rows.get(0), TTL);
        return new Found(rows.get(0), "miss");
    }

    /** PUT or DELETE: the cached copy is stale, drop it. */
    public void invalidate(int id) throws IOException {
        cache.del("item:" + id);
    }
}
