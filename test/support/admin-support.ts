/** Small helpers shared by the Admin API tests. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { makeClientConstructor, type ChannelCredentials, type Client, type ClientDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { expect } from 'vitest';
import { FedgateError } from '../../proto/index.js';

/** Awaits a call that must fail and returns its FedgateError. */
export async function expectFailure(promise: Promise<unknown>): Promise<FedgateError> {
  const error = await promise.then(
    () => new Error('expected the call to fail'),
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(FedgateError);
  return error as FedgateError;
}

/** The service names a server lists through gRPC server reflection (v1). */
export async function listReflectedServices(address: string, credentials: ChannelCredentials): Promise<string[]> {
  const reflectionProto = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');
  const definition = loadSync(reflectionProto, { keepCase: true, oneofs: true, defaults: true });
  const ReflectionClient = makeClientConstructor(definition['grpc.reflection.v1.ServerReflection'] as ServiceDefinition, 'ServerReflection');
  const client = new ReflectionClient(address, credentials) as unknown as Client & {
    ServerReflectionInfo(): ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }>;
  };
  try {
    const stream = client.ServerReflectionInfo();
    const reply = new Promise<string[]>((resolve, reject) => {
      stream.once('data', (message) => resolve((message.list_services_response?.service ?? []).map((service: { name: string }) => service.name)));
      stream.once('error', reject);
    });
    stream.write({ list_services: '' });
    stream.end();
    return await reply;
  } finally {
    client.close();
  }
}
