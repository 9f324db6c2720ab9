// The admin area (ADMIN role): live orders feed, sales dashboard, product administration.
// Loaded on demand, so its charts are not part of the storefront's initial JavaScript.
import { NavLink, Route, Routes } from 'react-router-dom';
import { OrdersFeed } from './OrdersFeed';
import { SalesDashboard } from './SalesDashboard';
import { ProductsAdmin } from './ProductsAdmin';

export default function AdminPage() {
  return (
    <div className="admin">
      <nav aria-label="Admin" className="tabs">
        <NavLink to="/admin" end>
          Orders
        </NavLink>
        <NavLink to="/admin/sales">Sales</NavLink>
        <NavLink to="/admin/products">Products</NavLink>
      </nav>
      <Routes>
        <Route index element={<OrdersFeed />} />
        <Route path="sales" element={<SalesDashboard />} />
        <Route path="products" element={<ProductsAdmin />} />
      </Routes>
    </div>
  );
}
