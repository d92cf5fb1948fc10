// A fresh MariaDB database for one benchmark run (dropped and created again), by name.
import mysql from 'mysql2/promise';

export async function freshDatabase(baseUrl: string, name: string): Promise<string> {
  const conn = await mysql.createConnection(baseUrl);
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await conn.query(`CREATE DATABASE \`${name}\``);
  } finally {
    await conn.end();
  }
  return `${baseUrl}/${name}`;
}
