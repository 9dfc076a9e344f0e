-- Runs once, when the compose Postgres volume is first initialised
-- (/docker-entrypoint-initdb.d): one database per service that has one. Each service applies
-- its own migrations at start (RUN_MIGRATIONS=true in docker-compose.yml).
CREATE DATABASE lomash_auth;
CREATE DATABASE lomash_products;
CREATE DATABASE lomash_orders;
CREATE DATABASE lomash_appointments;
CREATE DATABASE lomash_content;
CREATE DATABASE lomash_customers;
CREATE DATABASE lomash_notifications;
CREATE DATABASE lomash_analytics;
