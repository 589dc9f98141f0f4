package osilab.backend;

import javax.sql.DataSource;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import org.springframework.context.annotation.Bean;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * The Spring application context: which objects the app is made of, and how they meet.
 *
 * <p>As a Spring app has it: a {@link DataSource} that is a connection pool (HikariCP,
 * Spring Boot's default), a {@link JdbcTemplate} over it, the Redis client, and the
 * {@link Items} service that uses both. Spring calls each {@code @Bean} method once and
 * hands the result to the methods that take it as a parameter.
 *
 * <p>The pool opens its connections at start and keeps them: every SQL of the app goes
 * over one of these few long-lived TCP connections (the Python app has one, too; a
 * per-request connection would show a startup, authentication and Terminate each time).
 *
 * <p>No {@code @Configuration} on the class: that would make Spring subclass it at run
 * time with CGLIB to intercept calls between {@code @Bean} methods, and Debian's Spring
 * 4.3 build cannot generate classes on JDK 17. Without it, Spring processes the class in
 * "lite mode": each bean's dependencies come in as method parameters, as here.
 */
public class AppConfig {
    /** What the command line said: the {@link Backend} registers it before the context starts. */
    public static final class Settings {
        final String redis;
        final String database;
        final String instance;

        Settings(String redis, String database, String instance) {
            this.redis = redis;
            this.database = database;
            this.instance = instance;
        }
    }

    /**
     * pgjdbc's URL. {@code sslmode=disable}: a lab, the SQL must be readable in the
     * capture. {@code prepareThreshold=5} is the default, written out because it is the
     * lesson: the fifth execution of a statement on a connection switches to a named
     * server-side prepared statement.
     */
    static String url(String host) {
        return "jdbc:postgresql://" + host + ":5432/shop?sslmode=disable&prepareThreshold=5";
    }

    @Bean(destroyMethod = "close")
    public HikariDataSource dataSource(Settings settings) {
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(url(settings.database));
        config.setUsername("postgres");
        config.setPoolName("db-" + settings.instance);
        config.setMaximumPoolSize(2);  // small and fixed: minimumIdle defaults to the maximum
        config.setConnectionTimeout(5000);
        config.addDataSourceProperty("ApplicationName", "osilab-" + settings.instance);
        return new HikariDataSource(config);
    }

    @Bean
    public JdbcTemplate jdbcTemplate(DataSource dataSource) {
        return new JdbcTemplate(dataSource);
    }

    @Bean(destroyMethod = "close")
    public Resp redis(Settings settings) {
        return new Resp(settings.redis);
    }

    @Bean
    public Items items(JdbcTemplate jdbcTemplate, Resp redis) {
        return new Items(jdbcTemplate, redis);
    }
}
