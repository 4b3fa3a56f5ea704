-- docker-compose only: a stand-in for Liferay's database, so the local provider has something to dump.
CREATE DATABASE lportal OWNER lc2backup;
