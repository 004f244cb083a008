import { deviceProfileSchema, type DeviceProfile, type DeviceProfileInput } from '@labtrace/protocols';

export const climateProfileInput: DeviceProfileInput = {
  id: 'climate-t',
  identity: { maker: 'Test', model: 'Chamber', serialNumber: 'T-1' },
  connection: { transport: 'tcp', host: '127.0.0.1', port: 1 },
  points: [
    { name: 'temperature', register: 'holding', address: 0, type: 'float32', order: 'ABCD', unit: '°C' },
    { name: 'humidity', register: 'holding', address: 2, type: 'float32', order: 'CDAB', unit: '%RH' },
    { name: 'setpoint', register: 'holding', address: 4, type: 'int16', scale: 0.1, unit: '°C' },
    { name: 'door_open', register: 'discrete', address: 0, type: 'bool' },
  ],
};

export function profile(input: DeviceProfileInput = climateProfileInput): DeviceProfile {
  return deviceProfileSchema.parse(input);
}
