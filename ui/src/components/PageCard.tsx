import { Card, Space } from 'antd';
import type { ReactNode } from 'react';

export function PageCard({ title, extra, children }: { title: ReactNode; extra?: ReactNode; children: ReactNode }) {
  return (
    <Card title={<h2 style={{ margin: 0, fontSize: 18 }}>{title}</h2>} extra={<Space>{extra}</Space>}>
      {children}
    </Card>
  );
}
